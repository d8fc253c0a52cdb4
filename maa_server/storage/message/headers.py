"""Header blocks as offsets, and RFC 2047 decoding of header values.

Splitting follows Dovecot's message-header-parser.c: a header ends at the
first empty line ("\\n" or "\\r\\n"); a line starting with space or tab
continues the previous field; a line without ":" is a field whose whole line
is the name; without an empty line, everything up to the end is header.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One field: `start:end` spans its lines including the final line end."""

    name: str  # as written, trailing whitespace removed
    start: int
    end: int
    value: (
        bytes  # after ":" and leading whitespace; line breaks kept, final one dropped
    )

    @property
    def lname(self) -> str:
        return self.name.lower()


def parse_header_block(
    raw: bytes,
    start: int,
    end: int,
    is_boundary: Callable[[int], bool] | None = None,
) -> tuple[list[HeaderField], int, int]:
    """Fields of the header at `start`; returns (fields, header_end, body_start).

    `header_end` is where the empty line starts (or `body_start` when there
    is none). `is_boundary(pos)` tells whether a line starting with "--" at
    pos is a MIME boundary of an enclosing multipart: Dovecot checks that
    before every header line, so a boundary ends a header early.
    """
    fields: list[HeaderField] = []
    pos = start
    cur_start = -1
    cur_name = ""
    cur_vstart = 0
    find = raw.find
    while pos < end:
        nl = find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        first = raw[pos]
        if first == 0x0A or (first == 0x0D and line_end - pos == 2 and nl >= 0):
            if cur_start >= 0:
                fields.append(_field(raw, cur_name, cur_start, pos, cur_vstart))
            return fields, pos, line_end
        if first == 0x2D and is_boundary is not None and is_boundary(pos):
            break
        if (first == 0x20 or first == 0x09) and cur_start >= 0:
            pos = line_end  # continuation line
            continue
        if cur_start >= 0:
            fields.append(_field(raw, cur_name, cur_start, pos, cur_vstart))
        colon = find(b":", pos, line_end)
        if colon < 0:
            line_stop = nl if nl >= 0 else end
            if line_stop > pos and raw[line_stop - 1] == 0x0D:
                line_stop -= 1
            cur_name = raw[pos:line_stop].decode("latin-1").rstrip(" \t")
            cur_vstart = line_end
        else:
            cur_name = raw[pos:colon].decode("latin-1").rstrip(" \t")
            v = colon + 1
            while v < line_end and raw[v] in (0x20, 0x09):
                v += 1
            if v > colon + 1 and (v == line_end or raw[v] in (0x0D, 0x0A)):
                # A value of only whitespace: Dovecot skips just the first
                # blank and keeps the rest (message-header-parser.c).
                v = colon + 2
            cur_vstart = v
        cur_start = pos
        pos = line_end
    if cur_start >= 0:
        fields.append(_field(raw, cur_name, cur_start, pos, cur_vstart))
    return fields, pos, pos


def _field(raw: bytes, name: str, start: int, end: int, vstart: int) -> HeaderField:
    vend = end
    if vend > vstart and raw[vend - 1] == 0x0A:
        vend -= 1
        if vend > vstart and raw[vend - 1] == 0x0D:
            vend -= 1
    value = raw[vstart:vend] if vend > vstart else b""
    return HeaderField(name, start, end, value)


def unfold(value: bytes) -> bytes:
    """Drop the line breaks of a folded value, keeping the whitespace that
    follows them (RFC 5322 2.2.3)."""
    if b"\n" not in value:
        return value
    return value.replace(b"\r\n", b"").replace(b"\n", b"")


# RFC 2047 2: =?charset?encoding?encoded-text?=  (charset may carry *lang, RFC 2231 5)
_ENCODED_WORD = re.compile(rb"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_LWSP_ONLY = re.compile(rb"[ \t\r\n]*")


def _decode_word(charset: bytes, enc: bytes, text: bytes) -> str | None:
    try:
        if enc in (b"B", b"b"):
            pad = (-len(text)) % 4
            data = base64.b64decode(text + b"=" * pad, validate=False)
        else:
            data = re.sub(
                rb"=([0-9A-Fa-f]{2})",
                lambda m: bytes([int(m.group(1), 16)]),
                text.replace(b"_", b" "),
            )
        name = charset.decode("ascii", "replace")
        codecs.lookup(name)
        return data.decode(name, "replace")
    except (LookupError, ValueError, binascii.Error):
        return None


def _decode_raw(data: bytes) -> str:
    """Undecoded header bytes: UTF-8 when valid (RFC 6532), else Latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_rfc2047(value: bytes) -> str:
    """RFC 2047 decoding of an unfolded value; whitespace between adjacent
    encoded words is dropped (RFC 2047 6.2); undecodable words stay as is."""
    out: list[str] = []
    pos = 0
    last_was_word = False
    for m in _ENCODED_WORD.finditer(value):
        gap = value[pos : m.start()]
        decoded = _decode_word(m.group(1), m.group(2), m.group(3))
        if decoded is None:
            out.append(_decode_raw(value[pos : m.end()]))
            last_was_word = False
        else:
            if not (last_was_word and _LWSP_ONLY.fullmatch(gap)):
                out.append(_decode_raw(gap))
            out.append(decoded)
            last_was_word = True
        pos = m.end()
    out.append(_decode_raw(value[pos:]))
    return "".join(out)


def field_text(value: bytes) -> str:
    """A header value as text for SEARCH/SORT/Sieve: unfolded, decoded."""
    return decode_rfc2047(unfold(value).replace(b"\x00", b"")).strip()


def find_fields(fields: Sequence[HeaderField], name: str) -> list[HeaderField]:
    lname = name.lower()
    return [f for f in fields if f.lname == lname]
