"""dovecot-keywords: the per-folder map of keyword letters a..z, no I/O here.

Dovecot source: src/lib-storage/index/maildir/maildir-keywords.c. Spec 5.7.
"""

from __future__ import annotations

MAX_KEYWORDS = 26


def parse_keywords(data: bytes) -> list[str]:
    """Index -> name ("" for unused slots). Lines with an index >= 26, an
    empty name or a duplicate name (case-insensitive) are ignored."""
    slots = [""] * MAX_KEYWORDS
    seen: set[str] = set()
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        idx_text, sep, name = line.partition(" ")
        if not sep or not idx_text.isdigit() or not name:
            continue
        idx = int(idx_text)
        if idx >= MAX_KEYWORDS or name.lower() in seen or slots[idx]:
            continue
        slots[idx] = name
        seen.add(name.lower())
    while slots and not slots[-1]:
        slots.pop()
    return slots


def format_keywords(slots: list[str]) -> bytes:
    return "".join(f"{i} {name}\n" for i, name in enumerate(slots) if name).encode("utf-8", "surrogateescape")


def keyword_index(slots: list[str]) -> dict[str, int]:
    return {name.lower(): i for i, name in enumerate(slots) if name}


def add_keywords(slots: list[str], names: list[str]) -> tuple[list[str], bool]:
    """Give each unknown name the lowest unused index (never reassigning one).
    Returns the new slots and whether anything was added; names beyond the
    26 letters are left out (they cannot be stored in file names)."""
    result = list(slots)
    known = keyword_index(result)
    changed = False
    for name in names:
        if name.lower() in known:
            continue
        try:
            idx = result.index("")
        except ValueError:
            if len(result) >= MAX_KEYWORDS:
                continue
            idx = len(result)
            result.append("")
        result[idx] = name
        known[name.lower()] = idx
        changed = True
    return result, changed
