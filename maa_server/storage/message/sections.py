"""BODY[section] contents (RFC 3501 6.4.5) as Dovecot's imap-msgpart.c finds them.

Part numbers walk the tree: in a multipart, N is the Nth child; a
message/rfc822 part followed by more numbers stands for its message; a
non-multipart part answers to "1" once (RFC 3501: "part 1 of a non-multipart
message is its body"), so "1.1" of a plain message is empty in Dovecot too.
HEADER/TEXT/HEADER.FIELDS apply to the message itself (no part) or to a
message/rfc822 part; elsewhere they, like missing parts, give empty content.
Output is CRLF; the <o.n> partial is the caller's business.
"""

from __future__ import annotations

from collections.abc import Sequence

from .content import ContentInfo
from .headers import parse_header_block
from .parser import LEAF, MULTIPART, RFC822, MimePart, parse_mime

_NO_INFO = ContentInfo()


def to_crlf(data: bytes) -> bytes:
    """Bare LFs become CRLF (fast path: already CRLF or no LF at all)."""
    lf = data.count(b"\n")
    if lf == 0 or data.count(b"\r\n") == lf:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def to_imap(data: bytes) -> bytes:
    """CRLF line ends, and NUL sent as 0x80 as Dovecot does (RFC 3501 forbids
    NUL outside literal8; Dovecot's imap-fetch-body.c replaces it)."""
    data = to_crlf(data)
    return data.replace(b"\x00", b"\x80") if b"\x00" in data else data


def find_part(root: MimePart, path: Sequence[int]) -> MimePart | None:
    part = root
    entered = True  # may "1" still select a non-multipart part itself?
    for i, num in enumerate(path):
        if part.kind == MULTIPART:
            if num < 1 or num > len(part.children):
                return None
            part = part.children[num - 1]
            entered = True
        else:
            if num != 1 or not entered:
                return None
            entered = False
        if part.kind == RFC822 and i + 1 < len(path) and part.children:
            part = part.children[0]
            entered = True
    return part


def _header_lines(
    raw: bytes, part: MimePart, fields: Sequence[str], negate: bool, top: bool
) -> bytes:
    wanted = {f.lower() for f in fields}
    if top:
        hdr_fields, header_end, body_start = (
            part.fields,
            part.header_end,
            part.body_start,
        )
    else:
        # Dovecot re-reads an embedded message's header without regard to
        # the enclosing boundaries, up to its empty line or the end.
        hdr_fields, header_end, body_start = parse_header_block(
            raw, part.start, len(raw)
        )
    chunks = [raw[f.start : f.end] for f in hdr_fields if (f.lname in wanted) != negate]
    if negate or not top:
        # The header's own end (its empty line, if any) follows.
        chunks.append(raw[header_end:body_start])
        return to_imap(b"".join(chunks))
    # The message's own header: every line ends, and the empty line is there.
    body = b"".join(c if c.endswith(b"\n") else c + b"\n" for c in chunks)
    return to_imap(body + b"\n")


def section_of(
    raw: bytes,
    root: MimePart,
    part_path: Sequence[int],
    spec: str,
    fields: Sequence[str] = (),
) -> bytes:
    """Like get_section() with an already parsed tree (FETCH of many sections)."""
    part = find_part(root, part_path) if part_path else root
    if part is None:
        return b""
    spec = spec.upper()
    if spec == "":
        if not part_path:
            return to_imap(raw)
        return to_imap(raw[part.body_start : part.end])
    if spec == "MIME":
        if not part_path:
            return b""
        return to_imap(raw[part.start : part.body_start])
    top = not part_path
    if not top:
        if part.kind != RFC822 or not part.children:
            return b""
        part = part.children[0]
    if spec == "HEADER":
        return to_imap(raw[part.start : part.body_start])
    if spec == "TEXT":
        return to_imap(raw[part.body_start : part.end])
    if spec == "HEADER.FIELDS":
        return _header_lines(raw, part, fields, False, top)
    if spec == "HEADER.FIELDS.NOT":
        return _header_lines(raw, part, fields, True, top)
    return b""


def get_section(
    raw: bytes, part: tuple[int, ...], spec: str, fields: list[str] | None = None
) -> bytes:
    """BODY[part.spec (fields)] of a message, CRLF line ends.

    Sections of the message itself (the common HEADER.FIELDS of a client's
    message list) need only the header, so the MIME tree is not built for
    them. Callers that fetch several sections of one message should parse
    once and use section_of().
    """
    if not part:
        upper = spec.upper()
        if upper == "":
            return to_imap(raw)
        if upper in ("HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            hdr_fields, header_end, body_start = parse_header_block(raw, 0, len(raw))
            root = MimePart(
                0, header_end, body_start, len(raw), hdr_fields, _NO_INFO, LEAF, 0
            )
            return section_of(raw, root, (), upper, fields or ())
    return section_of(raw, parse_mime(raw), part, spec, fields or ())
