"""A strict reader for the IMAP values we produce (tests only)."""

from __future__ import annotations

import re

Value = None | bytes | int | list["Value"]

_NUMBER = re.compile(rb"\d+")
_LITERAL = re.compile(rb"\{(\d+)\}\r\n")


def read_value(data: bytes, pos: int = 0) -> tuple[Value, int]:
    """One value at pos: NIL, "quoted", {n} literal, number or (list)."""
    if data.startswith(b"NIL", pos):
        return None, pos + 3
    c = data[pos : pos + 1]
    if c == b'"':
        out = bytearray()
        i = pos + 1
        while True:
            ch = data[i]
            if ch == 0x5C:
                assert data[i + 1] in b'"\\', "bad escape"
                out.append(data[i + 1])
                i += 2
            elif ch == 0x22:
                return bytes(out), i + 1
            else:
                assert ch not in (0x0D, 0x0A, 0x00) and ch < 0x80, "bad quoted char"
                out.append(ch)
                i += 1
    if c == b"{":
        m = _LITERAL.match(data, pos)
        assert m, "bad literal"
        n = int(m.group(1))
        return data[m.end() : m.end() + n], m.end() + n
    if c == b"(":
        items: list[Value] = []
        i = pos + 1
        while data[i : i + 1] != b")":
            if items and data[i : i + 1] == b" ":
                i += 1
            value, i = read_value(data, i)
            items.append(value)
        return items, i + 1
    m = _NUMBER.match(data, pos)
    assert m, f"unexpected {data[pos : pos + 20]!r}"
    return int(m.group()), m.end()


def parse_whole(data: bytes) -> Value:
    value, end = read_value(data)
    assert end == len(data), f"trailing {data[end : end + 20]!r}"
    return value
