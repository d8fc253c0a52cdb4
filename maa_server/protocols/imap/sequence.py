"""IMAP sequence sets (RFC 3501 section 9 `sequence-set`).

`2,4:7,9,12:*` parses into ranges; `*` stands for the largest number in use
(the last sequence number or the last UID), so it is resolved late, against
the mailbox as the session sees it. `$` (RFC 5182 SEARCHRES) refers to the
saved search result and is resolved by the session.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from maa_server.protocols.imap.errors import ImapParseError

STAR = -1  # placeholder for `*` until resolved
MAX_NUMBER = 0xFFFFFFFF  # nz-number is a 32-bit unsigned value


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """Ranges as sent (STAR for `*`); `saved` is True for `$`."""

    ranges: tuple[tuple[int, int], ...]
    saved: bool = False

    def _bounds(self, max_value: int) -> Iterator[tuple[int, int]]:
        for lo, hi in self.ranges:
            lo = max_value if lo == STAR else lo
            hi = max_value if hi == STAR else hi
            if lo > hi:  # RFC 3501: "2:4" and "4:2" are the same range
                lo, hi = hi, lo
            yield lo, hi

    def _merged(self, max_value: int) -> list[tuple[int, int]]:
        """The ranges with `*` resolved, ascending, overlapping and adjacent
        ones joined (so they are disjoint)."""
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(self._bounds(max_value)):
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def contains(self, n: int, max_value: int) -> bool:
        """Is n in the set, with `*` meaning max_value?"""
        return any(lo <= n <= hi for lo, hi in self._bounds(max_value))

    def resolve(self, max_value: int) -> list[int]:
        """Numbers 1..max_value in the set, ascending, without duplicates.

        Numbers above max_value are dropped (a UID set may name UIDs that do
        not exist; a sequence-number set is checked by the caller with
        `out_of_range`). With an empty mailbox `*` resolves to nothing."""
        if max_value <= 0:
            return []
        out: list[int] = []
        for lo, hi in self._merged(max_value):
            out.extend(range(lo, min(hi, max_value) + 1))
        return out

    def resolve_in(self, values: Sequence[int], max_value: int) -> list[int]:
        """The members of the sorted `values` (existing UIDs) in the set;
        cheap for huge ranges like `1:4294967295` and for huge mailboxes
        (a binary search per range, not a test per value)."""
        out: list[int] = []
        for start, end in self.index_ranges(values, max_value):
            out.extend(values[start:end])
        return out

    def index_ranges(self, values: Sequence[int], max_value: int) -> list[tuple[int, int]]:
        """The members of the sorted `values` in the set as slices
        (start, end) of `values`, ascending and disjoint."""
        slices = [(bisect.bisect_left(values, lo), bisect.bisect_right(values, hi))
                  for lo, hi in self._merged(max_value)]
        return [(start, end) for start, end in slices if start < end]

    def out_of_range(self, max_value: int) -> bool:
        """A message sequence number above the last one (RFC 3501 9: invalid).

        `*` never is; with an empty mailbox any explicit number is."""
        for lo, hi in self.ranges:
            for v in (lo, hi):
                if v != STAR and v > max_value:
                    return True
        return False

    def __str__(self) -> str:
        if self.saved:
            return "$"
        parts = []
        for lo, hi in self.ranges:
            a = "*" if lo == STAR else str(lo)
            b = "*" if hi == STAR else str(hi)
            parts.append(a if lo == hi else f"{a}:{b}")
        return ",".join(parts)


def _number(text: str) -> int:
    if text == "*":
        return STAR
    if not text.isdigit() or not text.isascii() or text.startswith("0"):
        raise ImapParseError("Invalid messageset")
    value = int(text)
    if value > MAX_NUMBER:
        raise ImapParseError("Invalid messageset")
    return value


def parse_sequence_set(text: str, allow_saved: bool = True) -> SequenceSet:
    """Parse `1,3:5,7:*` (or `$`); raises ImapParseError("Invalid messageset")
    as Dovecot words it (imap-util / imap_seq_set_parse)."""
    if text == "$" and allow_saved:
        return SequenceSet((), saved=True)
    if text.endswith(",") and len(text) > 1:
        # Dovecot's imap_seq_set_parse stops at the end after a comma
        # (observed: `FETCH 1, FLAGS` fetches 1); `1,,2` stays invalid.
        text = text[:-1]
    if not text:
        raise ImapParseError("Invalid messageset")
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        lo_s, sep, hi_s = part.partition(":")
        lo = _number(lo_s)
        hi = _number(hi_s) if sep else lo
        ranges.append((lo, hi))
    return SequenceSet(tuple(ranges))


def is_sequence_set(text: str) -> bool:
    """Does this atom look like a sequence set (for SEARCH keys)?"""
    if text == "$":
        return True
    try:
        parse_sequence_set(text, allow_saved=False)
    except ImapParseError:
        return False
    return True


def format_uid_set(values: list[int]) -> str:
    """Compact ascending numbers into `1:3,5,7:9` (APPENDUID/COPYUID/ESEARCH)."""
    if not values:
        return ""
    out: list[str] = []
    start = prev = values[0]
    for v in values[1:]:
        if v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = v
    out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)
