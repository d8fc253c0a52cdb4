"""Test double: turn the argument part of a captured IMAP command into an Arg tree.

Just enough of the IMAP line grammar (atoms, quoted strings, `{n+}` literals,
parenthesised lists, a FETCH section kept as one atom) to feed the captured
Dovecot commands to parse_fetch_items / parse_search without the session's
real parser. Returns None where the real parser would answer BAD itself
(unbalanced parentheses, 8-bit atoms).
"""

from __future__ import annotations

from maa_server.protocols.imap.tokens import Arg, Atom, String

SPECIALS = b"() \r\n"


class Unparsable(Exception):
    pass


def parse_args(data: bytes) -> list[Arg]:
    stack: list[list[Arg]] = [[]]
    i = 0
    while i < len(data):
        ch = data[i:i + 1]
        if ch == b" ":
            i += 1
        elif ch == b"(":
            stack.append([])
            i += 1
        elif ch == b")":
            if len(stack) == 1:
                raise Unparsable("Unexpected ')'")
            done = stack.pop()
            stack[-1].append(done)
            i += 1
        elif ch == b'"':
            j = i + 1
            out = bytearray()
            while j < len(data) and data[j:j + 1] != b'"':
                if data[j:j + 1] == b"\\":
                    j += 1
                out += data[j:j + 1]
                j += 1
            if j >= len(data):
                raise Unparsable("Missing '\"'")
            stack[-1].append(String(bytes(out)))
            i = j + 1
        elif ch == b"{":
            end = data.index(b"}", i)
            size = int(data[i + 1:end].rstrip(b"+"))
            start = end + 3  # "}\r\n"
            stack[-1].append(String(data[start:start + size], literal=True))
            i = start + size
        else:
            j = i
            while j < len(data) and data[j:j + 1] not in (b" ", b"(", b")"):
                if data[j:j + 1] == b"[":
                    close = data.find(b"]", j)
                    if close < 0:
                        j = len(data)
                        break
                    j = close
                j += 1
            token = data[i:j]
            if any(b >= 0x80 for b in token):
                raise Unparsable("8bit data in atom")
            stack[-1].append(Atom(token.decode("ascii")))
            i = j
    if len(stack) != 1:
        raise Unparsable("Missing ')'")
    return stack[0]
