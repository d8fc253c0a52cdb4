"""MIME parsing for IMAP: ENVELOPE, BODY/BODYSTRUCTURE, BODY[section], search text.

Pure functions on the message bytes (no I/O), matching Dovecot 2.3's answers
byte for byte; see tests/fixtures/mime/ for the captured oracle.

- `parse_structure(raw)` -> MessageStructure (what the index caches)
- `get_section(raw, part, spec, fields)` -> bytes, CRLF
- `to_crlf(raw)`, `crlf_size(raw)` -> RFC 822 form and size
- `header_values(raw, name)`, `body_text(raw)`, `parse_addresses(value)`
"""

from __future__ import annotations

from ..interface import MessageStructure
from .address import Address, parse_addresses
from .headers import HeaderField, field_text, parse_header_block
from .parser import MimePart, parse_mime
from .sections import find_part, get_section, section_of, to_crlf
from .structure import StructureWriter, crlf_size_range, envelope
from .text import body_text, decode_charset, decode_transfer, header_values

__all__ = [
    "Address",
    "HeaderField",
    "MessageStructure",
    "MimePart",
    "body_text",
    "crlf_size",
    "decode_charset",
    "decode_transfer",
    "find_part",
    "get_section",
    "header_values",
    "parse_addresses",
    "parse_header_block",
    "parse_mime",
    "parse_structure",
    "search_headers",
    "section_of",
    "to_crlf",
]

# Decoded fields kept in MessageStructure.headers for SEARCH/SORT.
SEARCH_HEADER_FIELDS = (
    "subject",
    "from",
    "to",
    "cc",
    "bcc",
    "date",
    "message-id",
    "in-reply-to",
    "references",
)


def crlf_size(raw: bytes) -> int:
    """RFC822.SIZE: the size with every bare LF counted as CRLF."""
    return crlf_size_range(raw, 0, len(raw))


def search_headers(fields: list[HeaderField]) -> dict[str, str]:
    """First value of each SEARCH_HEADER_FIELDS field, unfolded and decoded;
    repeated address fields are joined with ", "."""
    out: dict[str, str] = {}
    for f in fields:
        ln = f.lname
        if ln not in SEARCH_HEADER_FIELDS:
            continue
        if ln in out:
            if ln in ("from", "to", "cc", "bcc"):
                out[ln] += ", " + field_text(f.value)
            continue
        out[ln] = field_text(f.value)
    return out


def parse_structure(raw: bytes) -> MessageStructure:
    """ENVELOPE, BODY, BODYSTRUCTURE and search headers of one message."""
    root = parse_mime(raw)
    writer = StructureWriter(raw)
    return MessageStructure(
        envelope=envelope(root.fields),
        body=writer.write(root, extended=False),
        bodystructure=writer.write(root, extended=True),
        headers=search_headers(root.fields),
    )
