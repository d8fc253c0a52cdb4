"""PREVIEW / SNIPPET text (fetch/preview.py) against answers captured from
Dovecot 2.3.19 (the same bodies as test_dovecot_parity.PREVIEW_MESSAGES)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.fetch import parse_fetch_items
from maa_server.protocols.imap.fetch.preview import (
    MAX_CHARS,
    html_to_text,
    preview_text,
    snippet,
)
from tests.unit.imap_fetch.argtree import parse_args

HEAD = b"From: a@example.org\nSubject: s\n"


@pytest.mark.parametrize(("body", "expected"), [
    (b"\na b  c\n\n\td e\n", "a b c d e"),
    (b"\n> quoted line\n> more\nreal text after\n", "real text after"),
    (b"\n> only quoted\n>   text here\n", ">only quoted text here"),
    (b"\n" + b"word " * 80, " ".join(["word"] * 40)),  # 199: no room for " w"
    (b"\n" + "\u00e9".encode() * 250, "\u00e9" * 200),
    (b"\n", ""),
    (b'\n  "quoted" \\ back\n', '"quoted" \\ back'),
    (b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=YY\n\n--YY\n"
     b"Content-Type: application/pdf\n\nxxx\n--YY\nContent-Type: text/plain\n\n"
     b"second part text\n--YY--\n", "second part text"),
    (b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=XX\n\n--XX\n"
     b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
     b"Hall=C3=B6 Welt =\nsoft\n--XX\nContent-Type: text/html\n\n<p>html</p>\n--XX--\n",
     "Hall\u00f6 Welt soft"),
    (b"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<html><head><style>p {x}"
     b"</style><title>T</title></head><body><p>Hello&nbsp;<b>bold</b> &amp; more</p><br>next"
     b"<script>var x;</script> line &lt;tag&gt; &#233;</body></html>\n",
     "T Hello\u00a0 bold & more next line <tag> \u00e9"),
    (b"MIME-Version: 1.0\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
     b"aGVsbG8=\n", ""),
])
def test_dovecot_previews(body: bytes, expected: str) -> None:
    assert preview_text(HEAD + body) == expected


def test_html_comments_and_blockquotes_vanish() -> None:
    assert html_to_text("a<!-- x -->b<blockquote>old</blockquote>c").split() == ["a", "b", "c"]


@given(st.text())
def test_snippet_is_short_and_trimmed(text: str) -> None:
    out = snippet(text)
    assert len(out) <= MAX_CHARS
    assert out == out.strip(" \t\r\n\v\f")


def test_fetch_items_with_preview_modifiers() -> None:
    req = parse_fetch_items(parse_args(b"(UID PREVIEW (LAZY) SNIPPET (FUZZY))")[0])
    assert [i.name for i in req.items] == ["UID", "PREVIEW", "SNIPPET"]
    assert req.needs_content
    with pytest.raises(ImapParseError, match="^'FOO' is not a supported PREVIEW modifier$"):
        parse_fetch_items(parse_args(b"(SNIPPET (FOO))")[0])
