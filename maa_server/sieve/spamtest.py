"""spamtest / spamtestplus / virustest (RFC 3685, RFC 5235): the test value
from a scanner's header, configured as Pigeonhole reads it:
`sieve_spamtest_status_type = score|strlen|text`,
`sieve_spamtest_status_header = X-Spam-Score: score=(-?[[:digit:]]+\\.[[:digit:]]).*`,
`sieve_spamtest_max_value` or `sieve_spamtest_max_header`,
`sieve_spamtest_text_valueN` (and the same with `virustest`).

The scaling was measured against Pigeonhole 0.5.19's sieve-test: "0" means
not tested (no header, or the pattern does not match); otherwise
1 + floor(ratio * 9) for spamtest (1-10), 1 + floor(ratio * 4) for virustest
(1-5), round(ratio * 100) for :percent; ratio = value / max, clamped to
0..1. No I/O."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from maa_server.sieve.message import SieveMessage

# POSIX bracket classes in Pigeonhole's (POSIX extended) patterns.
_POSIX_CLASSES = {"[:digit:]": r"0-9", "[:alpha:]": r"A-Za-z", "[:alnum:]": r"A-Za-z0-9",
                  "[:space:]": r"\s", "[:upper:]": r"A-Z", "[:lower:]": r"a-z",
                  "[:xdigit:]": r"0-9A-Fa-f", "[:punct:]": r"!-/:-@\[-`{-~", "[:blank:]": r" \t"}


def _python_regex(posix: str) -> re.Pattern[str] | None:
    for name, replacement in _POSIX_CLASSES.items():
        posix = posix.replace(name, replacement)
    try:
        return re.compile(posix)
    except re.error:
        return None


def _header_spec(value: str) -> tuple[str, re.Pattern[str] | None]:
    """`Header-Name[: regex]` -> (name, compiled regex or None)."""
    name, colon, pattern = value.partition(":")
    pattern = pattern.strip()
    return name.strip(), (_python_regex(pattern) if colon and pattern else None)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class StatusTest:
    kind: str  # "spamtest" or "virustest"
    status_type: str = "score"
    header: str = ""
    pattern: re.Pattern[str] | None = None
    max_value: float = 0.0
    max_header: str = ""
    max_pattern: re.Pattern[str] | None = None
    text_values: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_plugin(cls, plugin: dict[str, str], kind: str) -> StatusTest | None:
        """None when the status header is not configured."""
        prefix = f"sieve_{kind}_"
        if not plugin.get(prefix + "status_header"):
            return None
        header, pattern = _header_spec(plugin[prefix + "status_header"])
        max_header, max_pattern = _header_spec(plugin.get(prefix + "max_header", ""))
        top = 10 if kind == "spamtest" else 5
        texts = {plugin[f"{prefix}text_value{n}"]: n for n in range(top + 1)
                 if plugin.get(f"{prefix}text_value{n}")}
        return cls(kind, plugin.get(prefix + "status_type", "score").strip().lower(), header, pattern,
                   _number(plugin.get(prefix + "max_value", "")) or 0.0, max_header, max_pattern, texts)

    def _extract(self, message: SieveMessage, header: str, pattern: re.Pattern[str] | None) -> str | None:
        values = message.headers(header) if header else []
        if not values:
            return None
        value = values[0].strip()
        if pattern is None:
            return value
        m = pattern.search(value)
        if m is None:
            return None
        return m.group(1) if m.groups() else m.group(0)

    def _maximum(self, message: SieveMessage) -> float | None:
        if self.max_header:
            found = self._extract(message, self.max_header, self.max_pattern)
            return _number(found) if found is not None else None
        return self.max_value or None

    def value(self, message: SieveMessage, percent: bool = False) -> str:
        status = self._extract(message, self.header, self.pattern)
        if status is None:
            return "0"
        top = 10 if self.kind == "spamtest" else 5
        if self.status_type == "text":
            level = self.text_values.get(status)
            if level is None:
                return "0"
            ratio = (level - 1) / (top - 1) if top > 1 else 0.0
            if percent:
                return str(round(max(ratio, 0.0) * 100))
            return str(level)
        maximum = self._maximum(message)
        if not maximum or maximum <= 0:
            return "0"
        raw = float(len(status)) if self.status_type == "strlen" else _number(status)
        if raw is None:
            return "0"
        ratio = min(max(raw / maximum, 0.0), 1.0)
        if percent:
            return str(math.floor(ratio * 100 + 0.5))
        return str(1 + math.floor(ratio * (top - 1)))
