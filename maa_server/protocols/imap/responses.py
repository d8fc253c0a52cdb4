"""Serialising IMAP response data (RFC 3501 section 4 and 9).

Pure functions from values to wire bytes: the choice between atom, quoted
string and literal, NIL, flag lists, mailbox names in modified UTF-7
(RFC 3501 5.1.3) and the date-time format of INTERNALDATE.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

_QUOTE_UNSAFE = frozenset(b'\r\n\0')
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x21)) | {0x7F}


def quoted_or_literal(value: bytes | str) -> bytes:
    """`"text"` when it can be quoted, otherwise `{n}\\r\\n` + bytes.

    8-bit data and CR/LF/NUL need a literal (RFC 3501 4.3: quoted strings
    are 7-bit, without CR or LF)."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if len(data) < 4096 and all(b < 0x80 and b not in _QUOTE_UNSAFE for b in data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def nstring(value: bytes | str | None) -> bytes:
    return b"NIL" if value is None else quoted_or_literal(value)


def astring(value: bytes | str) -> bytes:
    """An atom when it is one (as Dovecot prints `INBOX`, `Archive/2024`),
    otherwise a quoted string or literal."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if data and data.upper() != b"NIL" and not any(b in _ATOM_SPECIALS or b >= 0x80 for b in data):
        return data
    return quoted_or_literal(data)


def mailbox_name(wire: str) -> bytes:
    """A mailbox name already in wire form (modified UTF-7), as an atom
    when possible (Dovecot prints `Archive/2024`, `"Sent Items"`)."""
    if wire.upper() == "INBOX":
        return b"INBOX"
    return astring(wire)


def flag_list(flags: Iterable[str]) -> bytes:
    return b"(" + " ".join(flags).encode("utf-8", "surrogateescape") + b")"


SYSTEM_FLAG_ORDER = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def ordered_flags(flags: Iterable[str], recent: bool = False) -> list[str]:
    """Flags in Dovecot's order: system flags first (in its fixed order),
    then \\Recent, then keywords in the order given (sorted for stability)."""
    fs = set(flags)
    out = [f for f in SYSTEM_FLAG_ORDER if f in fs]
    if recent:
        out.append("\\Recent")
    out.extend(sorted(f for f in fs if not f.startswith("\\")))
    return out


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
           "Oct", "Nov", "Dec")


def internal_date(ts: float) -> str:
    """`26-Nov-2026 17:01:40 +0000` in the server's local zone, as Dovecot."""
    lt = time.localtime(ts)
    off = lt.tm_gmtoff // 60
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return (f"{lt.tm_mday:02d}-{_MONTHS[lt.tm_mon - 1]}-{lt.tm_year:04d} "
            f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d} {sign}{off // 60:02d}{off % 60:02d}")


def parse_date_time(text: str) -> float | None:
    """RFC 3501 date-time (`"04-Jun-2024 10:00:00 +0000"`, day may be
    space-padded) to UNIX seconds; None when malformed."""
    import calendar

    text = text.strip()
    try:
        date_part, time_part, zone = text.split()
        day_s, mon_s, year_s = date_part.split("-")
        mon = [m.upper() for m in _MONTHS].index(mon_s.upper()) + 1
        day, year = int(day_s), int(year_s)
        hh, mm, ss = (int(x) for x in time_part.split(":"))
        if len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit():
            return None
        if not (1 <= day <= 31 and 0 <= hh < 24 and 0 <= mm < 60 and 0 <= ss < 61
                and len(year_s) == 4 and len(time_part) == 8):
            return None
        offset = (int(zone[1:3]) * 60 + int(zone[3:5])) * 60
        if zone[0] == "-":
            offset = -offset
        return float(calendar.timegm((year, mon, day, hh, mm, ss, 0, 0, 0)) - offset)
    except (ValueError, IndexError):
        return None


def parse_date(text: str) -> tuple[int, int, int] | None:
    """RFC 3501 `date` (`1-Feb-1994`) for SEARCH; (year, month, day)."""
    try:
        day_s, mon_s, year_s = text.split("-")
        mon = [m.upper() for m in _MONTHS].index(mon_s.upper()) + 1
        day, year = int(day_s), int(year_s)
    except (ValueError, IndexError):
        return None
    if not (1 <= day <= 31) or len(year_s) != 4:
        return None
    return year, mon, day
