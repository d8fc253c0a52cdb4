"""BINARY[] conversion (RFC 3516) against what the real Dovecot sent for the
same fixture messages (sizes and literal8 choice from dovecot_fetch.json)."""

from __future__ import annotations

import pytest

from maa_server.protocols.imap.fetch.binary import (
    UnknownCte,
    _split_entity,
    binary_content,
    decode_body,
    rewrite_header,
)
from tests.unit.imap_fetch.dovecot_fixtures import message_bytes


def crlf(index: int) -> bytes:
    return message_bytes(index).replace(b"\n", b"\r\n")


def whole(index: int) -> tuple[bytes, bool]:
    header, body = _split_entity(crlf(index))
    return binary_content(header, body, include_header=True)


def test_plain_message_is_unchanged_and_not_literal8() -> None:
    data, converted = whole(0)
    assert data == crlf(0) and not converted  # BINARY.SIZE[] 474, {474}


def test_quoted_printable_message_gets_a_binary_header() -> None:
    data, converted = whole(2)
    assert converted and len(data) == 429  # captured: BINARY[] ~{429}
    header, body = _split_entity(data)
    assert header.endswith(
        b"X-Mailer: Example Mailer 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n")
    assert b"quoted-printable" not in header
    text = "Schöne Grüße aus München!\r\nDas Treffen ist am Donnerstag.\r\n"
    assert body == text.encode("latin-1")


def test_multipart_converts_every_part_and_keeps_delimiters() -> None:
    data, converted = whole(1)
    assert converted and len(data) == 1038  # captured: BINARY.SIZE[] 1038
    assert data.count(b"Content-Transfer-Encoding: binary") == 3
    assert "Café budget".encode() in data
    assert bytes(range(64)) in data  # the base64 attachment, decoded
    assert data.endswith(b"--outer-boundary--\r\n")


def test_embedded_message_passes_through_when_nothing_is_encoded() -> None:
    raw = crlf(3)
    start = raw.index(b"Content-Type: message/rfc822")
    part = raw[start:raw.index(b"\r\n--fwd--")]
    header, body = _split_entity(part)
    data, converted = binary_content(header, body, include_header=False)
    assert len(data) == 210 and not converted  # captured: BINARY[2] {210}


def test_base64_attachment_decodes_to_binary() -> None:
    body = (b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n"
            b"MDEyMzQ1Njc4OTo7PD0+Pw==")
    assert decode_body(body, "base64") == bytes(range(64))  # captured: ~{64}
    assert decode_body(b"QUJD\r\nRA", "base64") == b"ABCD"  # missing padding tolerated
    # Characters outside the alphabet are skipped, as Dovecot's decoder does.
    assert decode_body(b"QU!!JD", "base64") == b"ABC"


def test_quoted_printable_soft_breaks() -> None:
    decoded = decode_body(b"Caf=C3=A9 =\r\nbudget\r\n", "quoted-printable")
    assert decoded == "Café budget\r\n".encode()


def test_unknown_encoding_is_unknown_cte() -> None:
    with pytest.raises(UnknownCte) as info:
        binary_content(b"Content-Transfer-Encoding: x-uuencode\r\n\r\n", b"begin 644 x\r\n",
                       include_header=False)
    assert info.value.code == "UNKNOWN-CTE"


def test_rewrite_header_drops_folded_encoding_lines() -> None:
    header = b"A: 1\r\nContent-Transfer-Encoding:\r\n base64\r\nB: 2\r\n\r\n"
    assert rewrite_header(header) == b"A: 1\r\nB: 2\r\nContent-Transfer-Encoding: binary\r\n\r\n"
