"""IMAP string output exactly as Dovecot 2.3 writes it (src/lib-imap/imap-quote.c).

Three writers, chosen per field as Dovecot does:
- `nstring`: quoted with backslash escapes, unless it holds CR/LF, 8-bit
  bytes or more than four `"`/`\\` characters: then a literal.
- `nstring_nolf`: line breaks removed first (Date, Message-ID, ...).
- `string_for_humans` (Subject, address names): any whitespace run becomes
  one space, leading/trailing whitespace goes; if anything had to change
  (a tab, a line break, a double space, `"`, `\\`, 8-bit) it is sent as a
  literal.
"""

from __future__ import annotations

import re

NIL = b"NIL"
_LWSP_RUN = re.compile(rb"[ \t\r\n]+")
_NEEDS_HUMAN_FIX = re.compile(rb'[\t\r\n"\\\x80-\xff\x00]|  |^ | $')


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n%s" % (len(data), data)


def nstring(value: bytes | None) -> bytes:
    if value is None:
        return NIL
    escapes = 0
    for c in value:
        if c == 0x22 or c == 0x5C:
            escapes += 1
            if escapes > 4:
                return literal(value)
        elif c == 0x0D or c == 0x0A or c >= 0x80:
            return literal(value)
    if escapes:
        value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + value + b'"'


def nstring_nolf(value: bytes | None) -> bytes:
    if value is not None and (b"\n" in value or b"\r" in value):
        value = value.replace(b"\r", b"").replace(b"\n", b"")
    return nstring(value)


def string_for_humans(value: bytes) -> bytes:
    if not _NEEDS_HUMAN_FIX.search(value):
        return b'"' + value + b'"'
    cleaned = _LWSP_RUN.sub(b" ", value.replace(b"\x00", b"\x80")).strip(b" ")
    if not cleaned:
        return b'""'
    return literal(cleaned)
