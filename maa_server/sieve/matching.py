"""Comparators (RFC 4790 as used by RFC 5228 2.7.3), match types :is
:contains :matches (2.7.1), :regex (draft-ietf-sieve-regex) and the
relational :count / :value (RFC 5231), with match variables (RFC 5229 3.2)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

RELOPS = {
    "gt": lambda c: c > 0, "ge": lambda c: c >= 0, "lt": lambda c: c < 0,
    "le": lambda c: c <= 0, "eq": lambda c: c == 0, "ne": lambda c: c != 0,
}


def _ascii_lower(s: str) -> str:
    return s.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _numeric(s: str) -> float:
    """i;ascii-numeric: the leading digits; none means positive infinity."""
    m = re.match(r"[0-9]+", s)
    return int(m.group()) if m else float("inf")


def compare(comparator: str, a: str, b: str) -> int:
    if comparator == "i;ascii-numeric":
        x, y = _numeric(a), _numeric(b)
    elif comparator == "i;octet":
        x, y = a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")  # type: ignore[assignment]
    else:
        x, y = _ascii_lower(a), _ascii_lower(b)  # type: ignore[assignment]
    return (x > y) - (x < y)  # type: ignore[operator]


@lru_cache(maxsize=512)
def _wildcard_regex(pattern: str, fold: bool) -> re.Pattern[str]:
    """`*` and `?` with `\\` escapes; each wildcard a group, non-greedy, so
    that RFC 5229's example "[*] *" gives ${1} = "acme-users"."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append("(.*?)")
        elif ch == "?":
            out.append("(.)")
        else:
            out.append(re.escape(ch))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if fold else 0)
    return re.compile("".join(out), flags)


@lru_cache(maxsize=256)
def _posix_regex(pattern: str, fold: bool) -> re.Pattern[str] | None:
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if fold else 0)
    try:
        # POSIX bracket classes Python lacks.
        for posix, py in (("[:alpha:]", "a-zA-Z"), ("[:digit:]", "0-9"), ("[:alnum:]", "a-zA-Z0-9"),
                          ("[:space:]", r"\s"), ("[:upper:]", "A-Z"), ("[:lower:]", "a-z"),
                          ("[:punct:]", r"!-/:-@\[-`{-~")):
            pattern = pattern.replace(posix, py)
        return re.compile(pattern, flags)
    except re.error:
        return None


class Matcher:
    """One test's match type and comparator; remembers the captures of the
    last successful :matches/:regex for match variables."""

    def __init__(self, tags: dict[str, object]) -> None:
        self.comparator = str(tags.get("comparator", "i;ascii-casemap")).lower()
        self.relop = ""
        if "count" in tags:
            self.kind, self.relop = "count", str(tags["count"]).lower()
        elif "value" in tags:
            self.kind, self.relop = "value", str(tags["value"]).lower()
        else:
            self.kind = next((k for k in ("is", "contains", "matches", "regex") if k in tags), "is")
        self.captures: list[str] | None = None

    def match(self, values: Sequence[str], keys: Sequence[str]) -> bool:
        if self.kind == "count":
            count = str(len(values))
            return any(RELOPS[self.relop](compare("i;ascii-numeric", count, k)) for k in keys)
        for value in values:
            for key in keys:
                if self.one(value, key):
                    return True
        return False

    def one(self, value: str, key: str) -> bool:
        fold = self.comparator == "i;ascii-casemap"
        if self.kind == "is":
            return compare(self.comparator, value, key) == 0
        if self.kind == "value":
            return RELOPS[self.relop](compare(self.comparator, value, key))
        if self.kind == "contains":
            if self.comparator == "i;octet":
                return key in value
            return _ascii_lower(key) in _ascii_lower(value)
        if self.kind == "matches":
            m = _wildcard_regex(key, fold).fullmatch(value)
            if m:
                self.captures = [value, *m.groups()]
            return m is not None
        rx = _posix_regex(key, fold)
        m = rx.search(value) if rx else None
        if m:
            self.captures = [m.group(0), *(g or "" for g in m.groups())]
        return m is not None
