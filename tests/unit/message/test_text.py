"""Decoded header values, body text and address lists (SEARCH, SORT, Sieve)."""

from __future__ import annotations

import pytest

from maa_server.storage.message import (
    body_text,
    header_values,
    parse_addresses,
    parse_structure,
)
from maa_server.storage.message.headers import decode_rfc2047


# RFC 2047 section 8, the table of examples.
@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"(=?ISO-8859-1?Q?a?=)", "(a)"),
        (b"(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        (b"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        (b"(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
        (b"(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
        (b"(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        (b"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
    ],
)
def test_rfc2047_examples(encoded: bytes, decoded: str) -> None:
    assert decode_rfc2047(encoded) == decoded


def test_rfc2047_base64_and_language_suffix() -> None:
    assert decode_rfc2047(b"=?UTF-8?B?SGVsbG8gd8O2cmxk?=") == "Hello w\u00f6rld"
    assert (
        decode_rfc2047(b"=?US-ASCII*EN?Q?Keith_Moore?=") == "Keith Moore"
    )  # RFC 2231 5


def test_rfc2047_bad_words_stay() -> None:
    assert decode_rfc2047(b"=?no-such-charset?Q?x?= y") == "=?no-such-charset?Q?x?= y"
    assert decode_rfc2047(b"=?utf-8?B?!!!?=") in ("=?utf-8?B?!!!?=", "")


def test_header_values_unfold_decode_and_repeat() -> None:
    raw = (
        b"Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\n"
        b" =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\n"
        b"X-Tag: one\nx-tag: two\n\nX-Tag: body, not header\n"
    )
    assert header_values(raw, "subject") == [
        "If you can read this you understand the example."
    ]
    assert header_values(raw, "X-TAG") == ["one", "two"]
    assert header_values(raw, "Missing") == []


def test_header_values_raw_utf8() -> None:
    raw = "Subject: caf\u00e9\n\n".encode()
    assert header_values(raw, "Subject") == ["caf\u00e9"]


def test_body_text_decodes_parts() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\n"
        b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
        b"Caf=E9 au=\n lait\n--x\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        b"PGI+w6k8L2I+\n--x\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
        b"--x\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner text\n--x--\n"
    )
    text = body_text(raw)
    assert "Caf\u00e9 au lait" in text
    assert "<b>\u00e9</b>" in text
    assert "PNG" not in text
    assert "inner text" in text


def test_body_text_survives_bad_encodings() -> None:
    raw = b"Content-Type: text/plain; charset=x-unknown\nContent-Transfer-Encoding: base64\n\n***not base64\xff\n"
    assert isinstance(body_text(raw), str)


def test_parse_addresses_group_and_names() -> None:
    addrs = parse_addresses(
        'Friends: "B b" <b@example.org>, a@example.org;, solo@example.org (Solo)'
    )
    assert [(a.name, a.mailbox, a.domain) for a in addrs] == [
        (None, b"Friends", None),
        (b"B b", b"b", b"example.org"),
        (None, b"a", b"example.org"),
        (None, None, None),
        (b"Solo", b"solo", b"example.org"),
    ]
    assert addrs[0].is_group_start and addrs[3].is_group_end
    assert addrs[4].addr_spec == "solo@example.org"


def test_parse_addresses_route_and_garbage() -> None:
    (a,) = parse_addresses("<@r1,@r2:u@h>")
    assert (a.route, a.mailbox, a.domain) == (b"@r1,@r2", b"u", b"h")
    assert parse_addresses("") == []
    assert parse_addresses(";;;")[0].mailbox == b""


def test_search_headers_of_structure() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\nTo: a@example.org\nTo: b@example.org\n"
        b"Subject: hi\nMessage-ID: <m@x>\nReferences: <a@x>\n <b@x>\n\nbody\n"
    )
    h = parse_structure(raw).headers
    assert h["from"] == "J\u00f6rg <j@example.org>"
    assert h["to"] == "a@example.org, b@example.org"
    assert h["subject"] == "hi"
    assert h["message-id"] == "<m@x>"
    assert h["references"] == "<a@x> <b@x>"
    assert "cc" not in h


def test_rfc3501_example_envelope() -> None:
    # The message of RFC 3501 6.3.11 (APPEND), its envelope per 7.4.2.
    raw = (
        b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
        b"Subject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu\r\n"
        b"Message-Id: <B27397-0100000@Blurdybloop.COM>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    )
    s = parse_structure(raw)
    fred = b'(("Fred Foobar" NIL "foobar" "Blurdybloop.COM"))'
    assert s.envelope == (
        b'("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "afternoon meeting" '
        + fred
        + b" "
        + fred
        + b" "
        + fred
        + b' ((NIL NIL "mooch" "owatagu.siam.edu")) NIL NIL NIL "<B27397-0100000@Blurdybloop.COM>")'
    )
    assert s.body == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 55 1)'
