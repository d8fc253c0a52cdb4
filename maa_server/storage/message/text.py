"""Decoded text of a message for SEARCH (RFC 3501 6.4.4) and Sieve.

`header_values` gives every value of a field, unfolded and RFC 2047 decoded;
`body_text` joins the text/* leaves with their Content-Transfer-Encoding
(RFC 2045 6) and charset undone. Bad encodings and unknown charsets degrade
to replacement characters, never to errors.
"""

from __future__ import annotations

import binascii
import codecs
import re

from .headers import field_text, find_fields, parse_header_block
from .parser import MULTIPART, RFC822, MimePart, parse_mime

_QP_SOFT_BREAK = re.compile(rb"=[ \t]*\r?\n")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_NON_B64 = re.compile(rb"[^A-Za-z0-9+/]")


def decode_transfer(data: bytes, encoding: bytes | None) -> bytes:
    enc = (encoding or b"7bit").lower()
    if enc == b"base64":
        clean = _NON_B64.sub(b"", data)
        clean = clean[: len(clean) - len(clean) % 4]
        try:
            return binascii.a2b_base64(clean)
        except binascii.Error:
            return b""
    if enc == b"quoted-printable":
        data = _QP_SOFT_BREAK.sub(b"", data)
        return _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)
    return data


def decode_charset(data: bytes, charset: bytes | None) -> str:
    name = (charset or b"us-ascii").decode("ascii", "replace").strip()
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):  # unknown name, or NUL in it
        name = "utf-8"
    if name.lower() in ("us-ascii", "ascii"):
        name = "utf-8"  # 8-bit text mislabelled as ASCII is usually UTF-8
    return data.decode(name, "replace")


def header_values(raw: bytes, name: str) -> list[str]:
    """Every value of header field `name` of the message, decoded."""
    fields, _, _ = parse_header_block(raw, 0, len(raw))
    return [field_text(f.value) for f in find_fields(fields, name)]


def _collect(raw: bytes, part: MimePart, out: list[str]) -> None:
    if part.kind == MULTIPART:
        for child in part.children:
            _collect(raw, child, out)
        return
    if part.kind == RFC822:
        for child in part.children:
            _collect(raw, child, out)
        return
    info = part.info
    if not info.is_text or info.overflow:
        return
    data = decode_transfer(raw[part.body_start : part.end], info.encoding)
    out.append(decode_charset(data, info.param(b"charset")))


def body_text(raw: bytes) -> str:
    """The decoded text/* parts of a message, joined by newlines."""
    out: list[str] = []
    _collect(raw, parse_mime(raw), out)
    return "\n".join(out)
