"""Property tests: any input parses, outputs are well-formed IMAP, sizes agree."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maa_server.storage.message import (
    body_text,
    crlf_size,
    get_section,
    header_values,
    parse_addresses,
    parse_mime,
    parse_structure,
    to_crlf,
)

from .imap_syntax import parse_whole

FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Bytes that matter to a MIME parser, so random input hits the interesting paths.
_ALPHABET = [
    b"\n",
    b"\r\n",
    b"\r",
    b"--",
    b"b",
    b"--b",
    b"--b--",
    b":",
    b" ",
    b"\t",
    b"\x00",
    b"\xc3\xa9",
    b"Content-Type: multipart/mixed; boundary=b\n",
    b"Content-Type: message/rfc822\n",
    b'Content-Type: text/plain; charset="x"\n',
    b"From: a@b\n",
    b"Subject: =?utf-8?q?x?=\n",
    b"To: g: a@b, <c@d>;\n",
    b'"',
    b"\\",
    b"(",
    b")",
    b"<",
    b">",
    b"@",
    b",",
    b";",
    b"Content-Transfer-Encoding: base64\n",
    b"Content-Transfer-Encoding: quoted-printable\n",
    b"Content-Type: text/plain; charset=",
    b"\x00\n",
    b"=?\x00?q?x?=",
    b"=3D",
    b"MIME-Version: 1.0\n",
]
mime_soup = st.lists(st.sampled_from(_ALPHABET), max_size=60).map(b"".join)


def _check_structure(raw: bytes) -> None:
    s = parse_structure(raw)
    env = parse_whole(s.envelope)
    assert isinstance(env, list) and len(env) == 10
    assert isinstance(parse_whole(s.body), list)
    assert isinstance(parse_whole(s.bodystructure), list)
    assert all(isinstance(v, str) for v in s.headers.values())


@FAST
@given(st.binary(max_size=400))
def test_any_bytes_parse(raw: bytes) -> None:
    _check_structure(raw)


@FAST
@given(mime_soup)
def test_mime_soup_parses(raw: bytes) -> None:
    _check_structure(raw)


@FAST
@given(
    mime_soup,
    st.lists(st.integers(1, 3), max_size=4),
    st.sampled_from(
        ["", "HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"]
    ),
)
def test_any_section_is_crlf_text(raw: bytes, path: list[int], spec: str) -> None:
    if spec == "MIME" and not path:
        spec = "HEADER"
    out = get_section(raw, tuple(path), spec, ["From", "Subject"])
    assert b"\x00" not in out
    assert out.count(b"\n") == out.count(b"\r\n")


@FAST
@given(mime_soup)
def test_part_ranges_are_ordered(raw: bytes) -> None:
    stack = [parse_mime(raw)]
    while stack:
        p = stack.pop()
        assert 0 <= p.start <= p.header_end <= p.body_start <= len(raw)
        assert p.body_start <= p.end <= len(raw)
        stack.extend(p.children)


@FAST
@given(st.binary(max_size=300))
def test_crlf_size_is_size_of_crlf_form(raw: bytes) -> None:
    converted = to_crlf(raw)
    assert crlf_size(raw) == len(converted)
    assert converted.count(b"\n") == converted.count(b"\r\n")
    assert converted.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


def test_whole_message_section_is_crlf_form() -> None:
    raw = b"Subject: x\n\nline\n"
    assert get_section(raw, (), "") == to_crlf(raw) == b"Subject: x\r\n\r\nline\r\n"


@FAST
@given(mime_soup)
def test_search_text_never_raises(raw: bytes) -> None:
    assert isinstance(body_text(raw), str)
    assert all(isinstance(v, str) for v in header_values(raw, "subject"))
    assert isinstance(parse_addresses(raw), list)
