"""SEARCH TEXT/BODY's shortcut for plain ASCII text parts never changes an
answer: a key is found there only when the full decoding finds it too, and
keys hidden in attachments, encodings or charsets are still decided by it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.protocols.imap.search.evaluate import _Message
from maa_server.protocols.imap.search.text import fold
from maa_server.storage.message.parser import parse_mime
from maa_server.storage.message.text import verbatim_text_parts


def message(*parts: tuple[bytes, bytes, bytes]) -> bytes:
    """A multipart/mixed message of (content-type, encoding, body) parts."""
    out = [(b"From: a@example.org\r\nSubject: hello\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")]
    for ctype, encoding, body in parts:
        out.append(b"--b\r\nContent-Type: " + ctype + b"\r\n")
        if encoding:
            out.append(b"Content-Transfer-Encoding: " + encoding + b"\r\n")
        out.append(b"\r\n" + body + b"\r\n")
    out.append(b"--b--\r\n")
    return b"".join(out)


def reference(raw: bytes, key: str) -> tuple[bool, bool]:
    """(TEXT, BODY) by decoding everything, as before the shortcut."""
    msg = _Message(1, None, False)  # type: ignore[arg-type]
    msg.raw = raw
    needle = fold(key)
    return needle in msg.headers_text() or needle in msg.body(), needle in msg.body()


def fast(raw: bytes, key: str) -> tuple[bool, bool]:
    needle = fold(key)
    text = _Message(1, None, False)  # type: ignore[arg-type]
    text.raw = raw
    body = _Message(1, None, False)  # type: ignore[arg-type]
    body.raw = raw
    return text.has_text(needle), body.has_body(needle)


def test_plain_part_hit_case_insensitive() -> None:
    raw = message((b"text/plain", b"7bit", b"the Budget is here"))
    assert fast(raw, "budget") == (True, True)


def test_only_plain_text_parts_are_verbatim() -> None:
    raw = message((b"text/plain; charset=utf-7", b"", b"budget +AOk-"),
                  (b"text/plain", b"base64", b"YnVkZ2V0"),
                  (b"application/octet-stream", b"", b"budget"),
                  (b"text/html; charset=us-ascii", b"8bit", b"<b>budget</b>"))
    parts = verbatim_text_parts(raw, parse_mime(raw))
    assert parts == [b"<b>budget</b>"]


def test_key_in_an_attachment_only_is_not_found() -> None:
    raw = message((b"text/plain", b"", b"nothing"), (b"application/pdf", b"7bit", b"budget"))
    assert fast(raw, "budget") == (False, False) == reference(raw, "budget")


def test_encoded_and_non_ascii_parts_still_decoded() -> None:
    raw = message((b"text/plain", b"base64", b"YnVkZ2V0"),
                  (b"text/plain; charset=utf-8", b"8bit", "caf\u00e9".encode()))
    assert fast(raw, "budget") == (True, True)
    assert fast(raw, "cafe") == (True, True)  # decomposed titlecase, as Dovecot


BODIES = st.sampled_from([b"budget", b"BUDGET plan", b"bud\r\nget", b"YnVkZ2V0", b"=62udget",
                          "budg\u00e9t".encode(), b"nothing", b""])
TYPES = st.sampled_from([b"text/plain", b"text/plain; charset=utf-7", b"text/html; charset=utf-8",
                         b"application/octet-stream", b"text/plain; charset=iso-8859-1"])
ENCODINGS = st.sampled_from([b"", b"7bit", b"8bit", b"base64", b"quoted-printable"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(TYPES, ENCODINGS, BODIES), min_size=1, max_size=4),
       st.sampled_from(["budget", "get", "nothing", "hello", "budg\u00e9t"]))
def test_same_answers_as_full_decoding(parts: list[tuple[bytes, bytes, bytes]], key: str) -> None:
    raw = message(*parts)
    assert fast(raw, key) == reference(raw, key)
