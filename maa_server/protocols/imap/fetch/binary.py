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


def _param(header: bytes, name: str) -> str | None:
    """A Content-Type parameter (quoted or not), e.g. the boundary."""
    ctype = header_field(header, "Content-Type") or ""
    match = re.search(r';\s*' + re.escape(name) + r'\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))',
                      ctype, re.IGNORECASE)
    if not match:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def _split_entity(data: bytes) -> tuple[bytes, bytes]:
    """A MIME entity into (header with its blank line, body)."""
    if data.startswith(b"\r\n"):
        return b"\r\n", data[2:]
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data, b""
    return data[:end + 4], data[end + 4:]


def _convert_multipart(body: bytes, boundary: str) -> tuple[bytes, bool]:
    """Convert every part between the delimiter lines; the delimiters, the
    preamble and the epilogue are kept byte for byte (RFC 2046 5.1.1: the
    CRLF before a delimiter belongs to the delimiter)."""
    delimiter = re.compile(rb"(?m)^--" + re.escape(boundary.encode("latin-1"))
                           + rb"(--)?[ \t]*\r?$")
    out = bytearray()
    converted = False
    position = 0
    part_start: int | None = None
    for match in delimiter.finditer(body):
        if part_start is not None:
            end = match.start() - 2 if body[match.start() - 2:match.start()] == b"\r\n" \
                else match.start()
            end = max(end, part_start)
            header, part_body = _split_entity(body[part_start:end])
            data, was = binary_content(header, part_body, include_header=True)
            converted |= was
            out += data + body[end:match.start()]
        else:
            out += body[position:match.start()]
        line_end = body.find(b"\n", match.end())
        line_end = len(body) if line_end < 0 else line_end + 1
        out += body[match.start():line_end]
        position = line_end
        if match.group(1):  # the close delimiter: the rest is epilogue
            part_start = None
            break
        part_start = line_end
    if part_start is not None:  # no close delimiter: the last part runs to the end
        header, part_body = _split_entity(body[part_start:])
        data, was = binary_content(header, part_body, include_header=True)
        return bytes(out) + data, converted or was
    return bytes(out) + body[position:], converted


def binary_content(header: bytes, body: bytes, include_header: bool) -> tuple[bytes, bool]:
    """Decode one entity given its header block and body (both CRLF).

    Returns (data, converted): converted when a transfer encoding was undone
    or NULs appear, which is when Dovecot answers with a `~{n}` literal8.
    `include_header` is for an entity sent with its header (BINARY[] of a
    message, the parts inside a multipart). Inside multiparts and embedded
    messages each part is converted, as Dovecot does (captured BINARY[1] of
    a multipart/alternative)."""
    cte = transfer_encoding(header)
    if is_container(header):
        if cte not in IDENTITY:
            raise UnknownCte()  # RFC 2045 6.4: composite types are never encoded
        ctype = (header_field(header, "Content-Type") or "").strip().lower()
        boundary = _param(header, "boundary") if ctype.startswith("multipart/") else None
        if boundary:
            data, converted = _convert_multipart(body, boundary)
        elif ctype.startswith("message/rfc822") or ctype.startswith("message/global"):
            sub_header, sub_body = _split_entity(body)
            data, converted = binary_content(sub_header, sub_body, include_header=True)
        else:
            data, converted = body, False
        converted = converted or b"\x00" in data
        return (header + data if include_header else data), converted
    decoded = decode_body(body, cte)
    converted = cte in DECODABLE or b"\x00" in decoded
    if include_header and cte in DECODABLE:
        return rewrite_header(header) + decoded, True
    return (header + decoded if include_header else decoded), converted
