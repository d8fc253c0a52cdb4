"""ManageSieve command syntax (RFC 5804 section 4), sans-IO.

A command is an atom followed by strings (quoted or literal) and numbers.
Literals may be `{n+}` or `{n}`: Pigeonhole sends no continuation for
either, so both are read straight on. `CommandReader` is fed lines and
literal bytes and keeps its state across literals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}\r?\n$")
MAX_ARGS = 8


class ParseError(Exception):
    pass


class LiteralTooLarge(ParseError):
    """A literal over the limit: the session must skip its `size` bytes."""

    def __init__(self, size: int, command_line: bytes) -> None:
        super().__init__("Literal too large")
        self.size = size
        self.command_line = command_line


@dataclass
class Command:
    name: str
    args: list[bytes | int] = field(default_factory=list)


@dataclass
class CommandReader:
    """Collects one command: `feed_line()` returns the number of literal
    bytes wanted next (0 when the command is complete)."""

    max_literal: int
    parts: list[bytes | tuple[bytes]] = field(default_factory=list)

    def feed_line(self, line: bytes) -> int:
        m = _LITERAL_AT_END.search(line)
        if m:
            size = int(m.group(1))
            if size > self.max_literal:
                first = self.parts[0] if self.parts and isinstance(self.parts[0], bytes) else line
                self.parts = []
                raise LiteralTooLarge(size, first)
            self.parts.append(line[: m.start()])
            return size
        self.parts.append(line.rstrip(b"\r\n"))
        return 0

    def feed_literal(self, data: bytes) -> None:
        self.parts.append((data,))

    def command(self) -> Command:
        args: list[bytes | int] = []
        name = ""
        for part in self.parts:
            if isinstance(part, tuple):
                args.append(part[0])
                continue
            for token in _scan(part):
                if not name:
                    if not isinstance(token, _Atom):
                        raise ParseError("Expected command name")
                    name = token.value.upper()
                elif isinstance(token, _Atom):
                    if token.value.isdigit():
                        args.append(int(token.value))
                    else:
                        raise ParseError(f"Unexpected atom '{token.value}'")
                else:
                    args.append(token)
        self.parts = []
        if not name:
            raise ParseError("Empty command")
        if len(args) > MAX_ARGS:
            raise ParseError("Too many command arguments.")
        return Command(name, args)


@dataclass
class _Atom:
    value: str


def _scan(data: bytes) -> list[bytes | _Atom]:
    out: list[bytes | _Atom] = []
    i, n = 0, len(data)
    while i < n:
        c = data[i:i + 1]
        if c in (b" ", b"\t"):
            i += 1
        elif c == b'"':
            buf = bytearray()
            i += 1
            while True:
                if i >= n:
                    raise ParseError("Unterminated quoted string")
                ch = data[i:i + 1]
                if ch == b"\\" and i + 1 < n:
                    buf += data[i + 1:i + 2]
                    i += 2
                elif ch == b'"':
                    i += 1
                    break
                else:
                    buf += ch
                    i += 1
            out.append(bytes(buf))
        else:
            j = i
            while j < n and data[j:j + 1] not in (b" ", b"\t", b'"'):
                j += 1
            atom = data[i:j].decode("ascii", "replace")
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", atom):
                raise ParseError("Invalid characters in atom")
            out.append(_Atom(atom))
            i = j
    return out


def quote(value: str | bytes) -> bytes:
    """A string as ManageSieve sends it: quoted when it can be, else a literal."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) < 1024 and not any(b in data for b in (b"\r", b"\n", b"\x00", b'"', b"\\")):
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data


def response(status: str, text: str | bytes = "", code: str = "") -> bytes:
    out = status.encode()
    if code:
        out += b" (" + code.encode() + b")"
    if text != "":
        out += b" " + quote(text)
    return out + b"\r\n"
