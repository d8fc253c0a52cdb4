"""POP3 wire format, sans-IO: command lines in, reply bytes out.

RFC 1939 section 3: a command is a keyword, then arguments separated by
single spaces, ended by CRLF. The argument checks and their error texts are
Dovecot's (src/pop3/pop3-commands.c: get_msgnum(), get_size()), so a client
sees the very same `-ERR` lines from us as from Dovecot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CRLF = b"\r\n"

# Dovecot stores mail with LF, and so may anyone else writing to the Maildir;
# POP3 always sends CRLF (RFC 1939 section 3).
_BARE_LF = re.compile(rb"(?<!\r)\n")
# Bare CR not followed by LF is left alone, as Dovecot's i_stream_crlf does.


@dataclass(frozen=True, slots=True)
class Command:
    """One command line: the keyword upper-cased and the raw argument text."""

    name: str
    args: str


class ArgumentError(Exception):
    """A bad argument: the text is the whole `-ERR` reply text."""


def parse_command(line: bytes) -> Command:
    """Split a command line as Dovecot does (src/pop3/pop3-client.c,
    client_handle_input): the name ends at the first space; everything after
    that one space is the argument string, kept as is."""
    text = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
    name, sep, args = text.partition(" ")
    return Command(name.upper(), args if sep else "")


def _parse_number(args: str) -> tuple[int, str] | None:
    match = re.match(r"[0-9]+", args)
    if match is None:
        return None
    return int(match.group()), args[match.end():]


def parse_msgnum(args: str, count: int, then_space: bool) -> tuple[int, str]:
    """A message number 1..count; returns (index from 0, the rest of the
    arguments with leading spaces skipped). `then_space`: another argument
    must follow (TOP). Texts as Dovecot's get_msgnum()."""
    parsed = _parse_number(args)
    if parsed is None:
        raise ArgumentError(f"Invalid message number: {args}")
    num, rest = parsed
    if num >= 2**32:
        raise ArgumentError(f"Message number too large: {args}")
    if rest[:1] != (" " if then_space else ""):
        raise ArgumentError(f"Noise after message number: {rest}")
    if num == 0 or num > count:
        raise ArgumentError(f"There's no message {num}.")
    return num - 1, rest.lstrip(" ")


def parse_size(args: str) -> int:
    """TOP's line count, the last argument (Dovecot's get_size())."""
    parsed = _parse_number(args)
    if parsed is None:
        raise ArgumentError(f"Invalid size: {args}")
    num, rest = parsed
    if num >= 2**64:
        raise ArgumentError(f"Size too large: {args}")
    if rest:
        raise ArgumentError(f"Noise after size: {rest}")
    return num


# --- replies ---------------------------------------------------------------

def ok(text: str = "") -> bytes:
    return b"+OK" + (b" " + text.encode("utf-8") if text else b"") + CRLF


def err(text: str) -> bytes:
    return b"-ERR " + text.encode("utf-8") + CRLF


def multiline(first: bytes, lines: list[str]) -> bytes:
    """A `+OK` line, the lines, then the terminating `.` (RFC 1939 section 3).
    Used for short listings that never start with a dot (CAPA, LIST, UIDL)."""
    body = b"".join(line.encode("utf-8") + CRLF for line in lines)
    return first + body + b"." + CRLF


def to_crlf(data: bytes) -> bytes:
    """Every LF not already preceded by CR becomes CRLF."""
    lf = data.count(b"\n")
    if lf == 0 or data.count(b"\r\n") == lf:
        return data  # the common case, decided at C speed (the regex is ~10x slower)
    return _BARE_LF.sub(b"\r\n", data)


def dot_stuff(crlf_data: bytes) -> bytes:
    """Byte-stuff lines starting with `.` (RFC 1939 section 3) and make sure
    the data ends with CRLF so the terminating `.` line stands alone."""
    # bytes.replace runs at C speed; a line starts after every LF, and at 0.
    stuffed = crlf_data.replace(b"\n.", b"\n..") if b"\n." in crlf_data else crlf_data
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if stuffed and not stuffed.endswith(CRLF):
        stuffed += CRLF
    return stuffed


def top_of_message(crlf_data: bytes, body_lines: int) -> bytes:
    """The header, the empty line, and the first `body_lines` lines of the
    body (RFC 1939 section 7, TOP). A message without an empty line is all
    header."""
    if crlf_data.startswith(CRLF):
        head_end = 2  # no header at all: the first line is the separator
    else:
        end = crlf_data.find(b"\r\n\r\n")
        if end < 0:
            return crlf_data
        head_end = end + 4
    head, body = crlf_data[:head_end], crlf_data[head_end:]
    if body_lines == 0 or not body:
        return head
    pos = 0
    for _ in range(body_lines):
        nl = body.find(b"\n", pos)
        if nl < 0:
            return head + body
        pos = nl + 1
    return head + body[:pos]
