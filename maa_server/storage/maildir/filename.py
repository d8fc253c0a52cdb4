"""Maildir file names: generation, sizes, and the `:2,` flag letters.

Dovecot source: src/lib-storage/index/maildir/maildir-filename.c and
maildir-filename-flags.c. Spec sections 5.2 and 5.3.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass

from maa_server.storage.interface import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

# Maildir letter <-> IMAP system flag (maildir-filename-flags.c).
FLAG_LETTERS = {"D": DRAFT, "F": FLAGGED, "R": ANSWERED, "S": SEEN, "T": DELETED}
LETTER_OF_FLAG = {flag: letter for letter, flag in FLAG_LETTERS.items()}
KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"
INFO_SEP = ":2,"


@dataclass(frozen=True, slots=True)
class ParsedName:
    """A file name split into what Dovecot reads from it."""

    base: str  # everything before the first ':' (the uidlist key)
    letters: str  # the first flag group after ':2,' ("" when none)
    tail: str  # ',<more>' groups after the first, kept verbatim
    has_info: bool  # the name has a ':2,' part
    size: int | None  # ,S=
    vsize: int | None  # ,W=


def _size_field(base: str, key: str) -> int | None:
    # Fields may appear anywhere in the base after the first ',' (maildir-filename.c
    # maildir_filename_get_size()).
    for field in base.split(",")[1:]:
        if field.startswith(key + "="):
            digits = field[2:]
            if digits.isdigit():
                return int(digits)
    return None


def parse_name(name: str) -> ParsedName:
    base, colon, info = name.partition(":")
    letters, tail, has_info = "", "", False
    if colon and info.startswith("2,"):
        has_info = True
        letters, comma, rest = info[2:].partition(",")
        tail = comma + rest
    elif colon:
        # An unknown info version: kept as it is, no flags for us.
        tail = ":" + info
    return ParsedName(base, letters, tail, has_info, _size_field(base, "S"), _size_field(base, "W"))


def split_info(name: str) -> tuple[str, str]:
    """(flag letters, further info groups) of a name, without the sizes:
    the cheap part of parse_name() for names whose sizes are known."""
    _, colon, info = name.partition(":")
    if not colon:
        return "", ""
    if not info.startswith("2,"):
        return "", ":" + info
    letters, comma, rest = info[2:].partition(",")
    return letters, comma + rest


def letters_to_flags(letters: str, keywords: list[str]) -> tuple[frozenset[str], str]:
    """Flags named by the letters, and the letters we do not understand (kept).
    A keyword letter without a dovecot-keywords entry is named `unknown-<n>`
    as Dovecot names it (maildir-keywords.c)."""
    flags: set[str] = set()
    unknown: list[str] = []
    for ch in letters:
        if ch in FLAG_LETTERS:
            flags.add(FLAG_LETTERS[ch])
        elif "a" <= ch <= "z":
            idx = ord(ch) - ord("a")
            flags.add(keywords[idx] if idx < len(keywords) and keywords[idx] else f"unknown-{idx}")
        else:
            unknown.append(ch)
    return frozenset(flags), "".join(unknown)


def flags_to_letters(flags: frozenset[str] | set[str], keyword_index: dict[str, int], unknown: str = "") -> str:
    """Letters sorted by ASCII value, uppercase before lowercase (spec 5.3).
    `keyword_index` maps lower-cased keyword -> index; keywords not in it
    cannot be stored and are dropped by the caller beforehand."""
    letters = set(unknown)
    for flag in flags:
        letter = LETTER_OF_FLAG.get(flag)
        if letter:
            letters.add(letter)
        elif not flag.startswith("\\"):
            idx = keyword_index.get(flag.lower())
            if idx is not None and idx < 26:
                letters.add(KEYWORD_LETTERS[idx])
    return "".join(sorted(letters))


def build_name(base: str, letters: str, tail: str = "", with_info: bool = True) -> str:
    if not with_info and not letters and not tail:
        return base
    if tail.startswith(":"):
        return base + tail
    return f"{base}{INFO_SEP}{letters}{tail}"


def virtual_size(data: bytes) -> int:
    """RFC 822 size: every line end counted as CRLF (Dovecot's W=)."""
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def _escape_host(host: str) -> str:
    # maildir_filename_generate(): '/' and ':' cannot be in a file name part.
    return host.replace("/", "\\057").replace(":", "\\072")


class NameGenerator:
    """Unique `<secs>.M<usecs>P<pid>.<host>` base names; the time is forced
    to increase within the process as Dovecot does (maildir-filename.c)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = (0, 0)
        self._host = _escape_host(socket.gethostname())

    def generate(self, size: int, vsize: int) -> str:
        with self._lock:
            now = time.time_ns() // 1000
            secs, usecs = divmod(now, 1_000_000)
            if (secs, usecs) <= self._last:
                secs, usecs = self._last
                usecs += 1
                if usecs >= 1_000_000:
                    secs, usecs = secs + 1, 0
            self._last = (secs, usecs)
        return f"{secs}.M{usecs}P{os.getpid()}.{self._host},S={size},W={vsize}"


name_generator = NameGenerator()


def sort_key(base: str) -> tuple[int, int, str]:
    """Dovecot's order for files discovered by a sync: the time stamp at the
    start of the name, then the M<usecs> value, then the name (maildir-uidlist.c
    maildir_filename_sort_cmp)."""
    secs_text, _, rest = base.partition(".")
    secs = int(secs_text) if secs_text.isdigit() else 0
    usecs = 0
    if rest.startswith("M"):
        digits = ""
        for ch in rest[1:]:
            if not ch.isdigit():
                break
            digits += ch
        usecs = int(digits) if digits else 0
    return (secs, usecs, base)
