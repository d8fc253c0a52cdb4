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


def body_text(raw: bytes, root: MimePart | None = None) -> str:
    """The decoded text/* parts of a message, joined by newlines. `root`:
    the message's part tree when the caller has parsed it already."""
    out: list[str] = []
    _collect(raw, parse_mime(raw) if root is None else root, out)
    return "\n".join(out)


# Charsets that decode ASCII bytes to the same characters (a whitelist: UTF-7,
# UTF-16, ISO-2022-* and EBCDIC code pages do not).
_ASCII_SAFE_CHARSETS = frozenset({
    "us-ascii", "ascii", "utf-8", "utf8", "iso-8859-1", "iso-8859-15", "latin1",
    "windows-1252", "cp1252",
})


def _text_leaves(part: MimePart, out: list[MimePart]) -> None:
    # The very parts _collect() decodes, in the same order.
    if part.kind in (MULTIPART, RFC822):
        for child in part.children:
            _text_leaves(child, out)
    elif part.info.is_text and not part.info.overflow:
        out.append(part)


def verbatim_text_parts(raw: bytes, root: MimePart) -> list[bytes]:
    """The bodies of the text parts whose body_text() is their raw bytes
    unchanged: all-ASCII, no base64/quoted-printable, an ASCII-compatible
    charset. SEARCH may look for an ASCII key in these without decoding."""
    leaves: list[MimePart] = []
    _text_leaves(root, leaves)
    out = []
    for part in leaves:
        info = part.info
        if (info.encoding or b"7bit").lower() in (b"base64", b"quoted-printable"):
            continue
        charset = (info.param(b"charset") or b"us-ascii").decode("ascii", "replace").strip().lower()
        if charset not in _ASCII_SAFE_CHARSETS:
            continue
        data = raw[part.body_start:part.end]
        if data.isascii():
            out.append(data)
    return out
