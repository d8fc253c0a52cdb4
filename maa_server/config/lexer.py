"""Sans-IO line reader for Dovecot's configuration grammar.

Feed physical lines to `LineReader.feed()`; it returns one classified `Line`
per logical line (or None while a `\\` continuation is pending). This mirrors
`config_parse_line()` in src/config/config-parser.c (Dovecot 2.3): comment
stripping that skips quoted text, line continuation, the `key = value`,
`key = <file`, `key = $var`, `type [name] {`, `}` and `!include` shapes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

WHITESPACE = " \t"
AMBIGUOUS_HASH = ("Ambiguous '#' character in line, treating it as comment. "
                  "Add a space before it to remove this warning.")


class LineKind(enum.Enum):
    KEY_VALUE = "key_value"          # key = value (quotes already removed)
    KEY_FILE = "key_file"            # key = <path
    KEY_VARIABLE = "key_variable"    # key = ... $name ...
    SECTION_BEGIN = "section_begin"  # type [name] {
    SECTION_END = "section_end"      # }
    INCLUDE = "include"              # !include pattern
    INCLUDE_TRY = "include_try"      # !include_try pattern
    ERROR = "error"                  # value holds the message


@dataclass(frozen=True)
class Line:
    kind: LineKind
    key: str
    value: str
    lineno: int
    warnings: tuple[str, ...] = ()


def unescape(text: str) -> str:
    """str_unescape(): a backslash keeps the next character literally (`\\"` -> `"`)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


def strip_comment(line: str) -> tuple[str, bool]:
    """Cut the line at the first `#` outside quotes. Returns (text, ambiguous):
    ambiguous is True when that `#` did not follow whitespace (Dovecot warns)."""
    i = 0
    while i < len(line):
        char = line[i]
        if char in "'\"":
            i += 1
            while i < len(line) and line[i] != char:
                if line[i] == "\\" and i + 1 < len(line):
                    i += 1
                i += 1
            if i >= len(line):
                break
        elif char == "#":
            return line[:i], i > 0 and line[i - 1] not in WHITESPACE
        i += 1
    return line, False


def classify(line: str, lineno: int, warnings: tuple[str, ...] = ()) -> Line:
    """Classify one complete, comment-free, trimmed logical line."""
    end = 0
    while end < len(line) and line[end] not in WHITESPACE and line[end] != "=":
        end += 1
    key, rest = line[:end], line[end:].lstrip(WHITESPACE)
    if key == "!include":
        return Line(LineKind.INCLUDE, key, rest, lineno, warnings)
    if key == "!include_try":
        return Line(LineKind.INCLUDE_TRY, key, rest, lineno, warnings)
    if rest.startswith("="):
        value = rest[1:].lstrip(WHITESPACE)
        if value.startswith("<"):
            return Line(LineKind.KEY_FILE, key, value[1:].lstrip(WHITESPACE), lineno, warnings)
        if value[:1] not in ("'", '"') and "$" in value:
            return Line(LineKind.KEY_VARIABLE, key, value, lineno, warnings)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
            value = unescape(value[1:-1])
        return Line(LineKind.KEY_VALUE, key, value, lineno, warnings)
    if key == "}" and not rest:
        return Line(LineKind.SECTION_END, key, "", lineno, warnings)
    if rest.startswith("{"):
        name = ""
    else:
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            close = rest.find(quote, 1)
            if close < 0:
                return Line(LineKind.ERROR, key, "Missing closing quote", lineno, warnings)
            name, rest = rest[1:close], rest[close + 1:].lstrip(WHITESPACE)
        else:
            cut = 0
            while cut < len(rest) and rest[cut] not in WHITESPACE:
                cut += 1
            name, rest = rest[:cut], rest[cut:].lstrip(WHITESPACE)
        if not rest.startswith("{"):
            return Line(LineKind.ERROR, key, "Expecting '{'", lineno, warnings)
    if rest != "{":
        return Line(LineKind.ERROR, key, "Garbage after '{'", lineno, warnings)
    return Line(LineKind.SECTION_BEGIN, key, name, lineno, warnings)


class LineReader:
    """Turns physical lines into logical `Line`s (sans-IO: the caller reads files)."""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._warnings: list[str] = []

    def feed(self, raw: str, lineno: int) -> Line | None:
        line = raw.lstrip(WHITESPACE).rstrip("\r\n")
        if not line or line.startswith("#"):
            return None  # skipped before continuation handling, as in Dovecot
        line, ambiguous = strip_comment(line)
        if ambiguous:
            self._warnings.append(f"line {lineno}: {AMBIGUOUS_HASH}")
        line = line.rstrip(WHITESPACE)
        if line.endswith("\\"):
            # Continuation: drop the backslash and the blanks before it, join with one space.
            self._pending.append(line[:-1].rstrip(WHITESPACE) + " ")
            return None
        if self._pending:
            line = "".join(self._pending) + line
            self._pending.clear()
        if not line:
            return None
        warnings, self._warnings = tuple(self._warnings), []
        return classify(line, lineno, warnings)

    def finish(self, lineno: int) -> Line | None:
        """End of file: a dangling continuation is parsed as it stands."""
        if not self._pending:
            return None
        line = "".join(self._pending).rstrip(WHITESPACE)
        self._pending.clear()
        warnings, self._warnings = tuple(self._warnings), []
        return classify(line, lineno, warnings) if line else None
