"""BINARY[] content: a body part with its Content-Transfer-Encoding undone (RFC 3516).

Dovecot (src/lib-storage/index/index-mail-binary.c) decodes base64 and
quoted-printable parts, leaves 7bit/8bit/binary ones alone, and answers
`NO [UNKNOWN-CTE]` for anything else. For the whole message (or an embedded
message/rfc822) of a single-part body it also rewrites the header: the old
Content-Transfer-Encoding line goes and `Content-Transfer-Encoding: binary`
is appended at the end of the header (captured in dovecot_fetch.json).
"""

from __future__ import annotations

import binascii
import re

from maa_server.protocols.imap.errors import ImapCommandFailed

IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
DECODABLE = frozenset({"base64", "quoted-printable"})

_ENCODED_PART = re.compile(
    rb"^content-transfer-encoding[ \t]*:[ \t]*(base64|quoted-printable)",
    re.IGNORECASE | re.MULTILINE)


class UnknownCte(ImapCommandFailed):
    """RFC 3516 4.3: the server cannot decode this part's encoding."""

    def __init__(self) -> None:
        super().__init__("Unknown Content-Transfer-Encoding.", "UNKNOWN-CTE")


def header_field(header: bytes, name: str) -> str | None:
    """The unfolded value of the first `name:` field of a header block."""
    wanted = name.lower().encode("ascii")
    lines = header.replace(b"\r\n", b"\n").split(b"\n")
    for i, line in enumerate(lines):
        if b":" not in line or line[:1] in (b" ", b"\t"):
            continue
        key, _, value = line.partition(b":")
        if key.strip().lower() != wanted:
            continue
        parts = [value]
        for cont in lines[i + 1:]:
            if cont[:1] in (b" ", b"\t"):
                parts.append(cont)
            else:
                break
        return b" ".join(p.strip() for p in parts).decode("latin-1")
    return None


def transfer_encoding(header: bytes) -> str:
    value = header_field(header, "Content-Transfer-Encoding") or ""
    return value.split(";")[0].strip().lower()


def is_container(header: bytes) -> bool:
    """multipart/* or message/*: content that is itself MIME."""
    ctype = (header_field(header, "Content-Type") or "").strip().lower()
    return ctype.startswith("multipart/") or ctype.startswith("message/")


def decode_body(body: bytes, cte: str) -> bytes:
    """Undo one Content-Transfer-Encoding; raises UnknownCte."""
    if cte in IDENTITY:
        return body
    if cte == "base64":
        # Like Dovecot's base64 decoder: ignore line breaks, stop at padding,
        # tolerate garbage rather than failing the FETCH.
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", body.split(b"=", 1)[0])
        extra = len(cleaned) % 4
        if extra == 1:  # a lone trailing sextet carries no whole byte
            cleaned = cleaned[:-1]
        elif extra:
            cleaned += b"=" * (4 - extra)
        try:
            return binascii.a2b_base64(cleaned)
        except (binascii.Error, ValueError):
            return b""
    if cte == "quoted-printable":
        # a2b_qp keeps CRLF line ends and drops `=` soft breaks.
        return binascii.a2b_qp(body)
    raise UnknownCte()


def rewrite_header(header: bytes) -> bytes:
    """Drop Content-Transfer-Encoding and append `...: binary` (Dovecot's shape)."""
    lines = header.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if lines and lines[-1] == b"":
        lines.pop()
    out: list[bytes] = []
    skipping = False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                out.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() == b"content-transfer-encoding"
        if not skipping:
            out.append(line)
    out.append(b"Content-Transfer-Encoding: binary")
    return b"\r\n".join(out) + b"\r\n\r\n"


def binary_content(header: bytes, body: bytes, include_header: bool) -> tuple[bytes, bool]:
    """Decode one entity given its header block and body (both CRLF).

    Returns (data, converted). `include_header` is for BINARY[] of a whole
    (sub)message, whose header is sent too. A multipart or message/* body
    passes through when nothing inside it is encoded; Dovecot would convert
    each inner part, which we refuse with UNKNOWN-CTE rather than send
    something different."""
    cte = transfer_encoding(header)
    if is_container(header):
        if cte not in IDENTITY:
            raise UnknownCte()
        if _ENCODED_PART.search(body):
            raise UnknownCte()
        return (header + body if include_header else body), b"\x00" in body
    decoded = decode_body(body, cte)
    converted = cte in DECODABLE or b"\x00" in decoded
    if include_header:
        if cte in DECODABLE:
            return rewrite_header(header) + decoded, True
        return header + decoded, converted
    return decoded, converted
