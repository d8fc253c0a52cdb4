"""Sieve lexer and parser (RFC 5228 section 8) into a small AST.

The grammar is tiny; the only subtle parts are multi-line `text:` strings
with dot-unstuffing (8.1) and keeping line numbers for error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from maa_server.sieve.errors import SieveError, at

MAX_NESTING = 32  # Pigeonhole's default sieve block nesting limit


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # identifier, tag, number, string, punct, eof
    value: object
    line: int


@dataclass(slots=True)
class Tag:
    name: str  # without the colon, lower case
    line: int


@dataclass(slots=True)
class StringList:
    values: list[str]
    line: int
    single: bool  # written as one string, not a [list]


Argument = Tag | int | StringList


@dataclass(slots=True)
class Test:
    name: str
    args: list[Argument]
    tests: list[Test]
    line: int
    # Filled by the validator, as for Command.
    tags: dict[str, object] = field(default_factory=dict)
    positional: list[object] = field(default_factory=list)


@dataclass(slots=True)
class Command:
    name: str
    args: list[Argument]
    tests: list[Test]
    block: list[Command] | None
    line: int
    # Filled by the validator: tagged arguments and positional ones.
    tags: dict[str, object] = field(default_factory=dict)
    positional: list[object] = field(default_factory=list)


_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r]+)
      |(?P<nl>\n)
      |(?P<hash>\#[^\n]*)
      |(?P<bracket>/\*)
      |(?P<text>text:[ \t]*(?:\#[^\n]*)?\r?\n)
      |(?P<identifier>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<tag>:[A-Za-z_][A-Za-z0-9_]*)
      |(?P<number>[0-9]+[KkMmGg]?)
      |(?P<quote>")
      |(?P<punct>[\[\](){},;])
    """,
    re.VERBOSE,
)
_QUANT = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line, n = 0, 1, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if not m:
            raise SieveError([at(line, f"unexpected character '{text[pos]}'")])
        kind = m.lastgroup
        if kind == "nl":
            line += 1
            pos = m.end()
        elif kind in ("ws", "hash"):
            pos = m.end()
        elif kind == "bracket":
            end = text.find("*/", m.end())
            if end < 0:
                raise SieveError([at(line, "unterminated comment")])
            line += text.count("\n", pos, end)
            pos = end + 2
        elif kind == "text":
            start_line = line
            line += 1
            value, pos, line = _multiline(text, m.end(), line, start_line)
            tokens.append(Token("string", value, start_line))
        elif kind == "quote":
            start_line = line
            value, pos, line = _quoted(text, m.end(), line)
            tokens.append(Token("string", value, start_line))
        elif kind == "number":
            raw = m.group()
            mult = _QUANT.get(raw[-1].lower(), 1)
            digits = raw[:-1] if mult > 1 else raw
            tokens.append(Token("number", int(digits) * mult, line))
            pos = m.end()
        elif kind == "tag":
            tokens.append(Token("tag", m.group()[1:].lower(), line))
            pos = m.end()
        elif kind == "identifier":
            tokens.append(Token("identifier", m.group().lower(), line))
            pos = m.end()
        else:
            tokens.append(Token("punct", m.group(), line))
            pos = m.end()
    tokens.append(Token("eof", None, line))
    return tokens


def _quoted(text: str, pos: int, line: int) -> tuple[str, int, int]:
    out: list[str] = []
    start_line = line
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            line += text[pos + 1] == "\n"
            pos += 2
        elif ch == '"':
            return "".join(out), pos + 1, line
        else:
            line += ch == "\n"
            out.append(ch)
            pos += 1
    raise SieveError([at(start_line, "unterminated string")])


def _multiline(text: str, pos: int, line: int, start_line: int) -> tuple[str, int, int]:
    out: list[str] = []
    while pos < len(text):
        end = text.find("\n", pos)
        if end < 0:
            break
        raw = text[pos:end]
        pos = end + 1
        line += 1
        content = raw.removesuffix("\r")
        if content == ".":
            return "".join(out), pos, line
        if content.startswith(".."):
            content = content[1:]
        out.append(content + "\r\n")
    raise SieveError([at(start_line, "unterminated multi-line string (missing '.' line)")])


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect_punct(self, value: str) -> Token:
        tok = self.next()
        if tok.kind != "punct" or tok.value != value:
            raise SieveError([at(tok.line, f"expected '{value}' but found {_describe(tok)}")])
        return tok

    def commands(self, depth: int, until_brace: bool) -> list[Command]:
        out: list[Command] = []
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                if until_brace:
                    raise SieveError([at(tok.line, "expected end of compound block '}', "
                                                   f"but found {_describe(tok)}.")])
                return out
            if tok.kind == "punct" and tok.value == "}" and until_brace:
                self.next()
                return out
            out.append(self.command(depth))

    def command(self, depth: int) -> Command:
        tok = self.next()
        if tok.kind != "identifier":
            raise SieveError([at(tok.line, f"expected command but found {_describe(tok)}")])
        args, tests = self.arguments(depth)
        end = self.next()
        if end.kind == "punct" and end.value == ";":
            return Command(str(tok.value), args, tests, None, tok.line)
        if end.kind == "punct" and end.value == "{":
            if depth >= MAX_NESTING:
                raise SieveError([at(end.line, "too deeply nested blocks")])
            block = self.commands(depth + 1, until_brace=True)
            return Command(str(tok.value), args, tests, block, tok.line)
        raise SieveError([at(end.line, "expected end of command ';' or the beginning of a "
                                       f"compound block '{{', but found {_describe(end)}.")])

    def arguments(self, depth: int) -> tuple[list[Argument], list[Test]]:
        args: list[Argument] = []
        while True:
            tok = self.peek()
            if tok.kind == "tag":
                self.next()
                args.append(Tag(str(tok.value), tok.line))
            elif tok.kind == "number":
                self.next()
                args.append(int(str(tok.value)))
            elif tok.kind == "string":
                self.next()
                args.append(StringList([str(tok.value)], tok.line, True))
            elif tok.kind == "punct" and tok.value == "[":
                args.append(self.string_list())
            else:
                break
        tests: list[Test] = []
        tok = self.peek()
        if tok.kind == "identifier":
            tests = [self.test(depth)]
        elif tok.kind == "punct" and tok.value == "(":
            tests = self.test_list(depth)
        return args, tests

    def string_list(self) -> StringList:
        start = self.expect_punct("[")
        values: list[str] = []
        while True:
            tok = self.next()
            if tok.kind != "string":
                raise SieveError([at(tok.line, f"expected string in list but found {_describe(tok)}")])
            values.append(str(tok.value))
            sep = self.next()
            if sep.kind == "punct" and sep.value == "]":
                return StringList(values, start.line, False)
            if not (sep.kind == "punct" and sep.value == ","):
                raise SieveError([at(sep.line, f"expected ',' or ']' but found {_describe(sep)}")])

    def test(self, depth: int) -> Test:
        tok = self.next()
        if tok.kind != "identifier":
            raise SieveError([at(tok.line, f"expected test but found {_describe(tok)}")])
        if depth >= MAX_NESTING:
            raise SieveError([at(tok.line, "too deeply nested tests")])
        args, tests = self.arguments(depth + 1)
        return Test(str(tok.value), args, tests, tok.line)

    def test_list(self, depth: int) -> list[Test]:
        self.expect_punct("(")
        tests = [self.test(depth)]
        while True:
            tok = self.next()
            if tok.kind == "punct" and tok.value == ")":
                return tests
            if not (tok.kind == "punct" and tok.value == ","):
                raise SieveError([at(tok.line, f"expected ',' or ')' but found {_describe(tok)}")])
            tests.append(self.test(depth))


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "end of file"
    if tok.kind == "string":
        return "string"
    if tok.kind == "tag":
        return f"tag ':{tok.value}'"
    return f"'{tok.value}'" if tok.kind != "number" else "number"


def parse(text: str) -> list[Command]:
    return _Parser(tokenize(text)).commands(0, until_brace=False)
