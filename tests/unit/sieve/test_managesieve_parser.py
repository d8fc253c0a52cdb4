"""The sans-IO ManageSieve command reader (RFC 5804 section 4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.protocols.managesieve.parser import (
    CommandReader,
    LiteralTooLarge,
    ParseError,
    quote,
    response,
)


def read(*chunks: bytes, max_literal: int = 1000):  # type: ignore[no-untyped-def]
    """Feed lines and literals the way the session does."""
    reader = CommandReader(max_literal=max_literal)
    pending = list(chunks)
    want = reader.feed_line(pending.pop(0))
    while want:
        reader.feed_literal(pending.pop(0))
        want = reader.feed_line(pending.pop(0))
    return reader.command()


def test_rfc5804_examples() -> None:
    # RFC 5804 2.6 and 2.9
    cmd = read(b'Putscript "foo" {31+}\r\n', b"#comment\r\nInvalidSieveCommand\r\n", b"\r\n")
    assert (cmd.name, cmd.args) == ("PUTSCRIPT", [b"foo", b"#comment\r\nInvalidSieveCommand\r\n"])
    cmd = read(b'HAVESPACE "myscript" 999999\r\n')
    assert (cmd.name, cmd.args) == ("HAVESPACE", [b"myscript", 999999])
    cmd = read(b'RENAMESCRIPT "foo" "bar"\r\n')
    assert cmd.args == [b"foo", b"bar"]


def test_synchronizing_literal_is_read_straight_on() -> None:
    # Pigeonhole sends no continuation for {n} either.
    assert read(b'CHECKSCRIPT {5}\r\n', b"keep;", b"\r\n").args == [b"keep;"]


def test_quoted_escapes() -> None:
    assert read(b'CHECKSCRIPT "require \\"fileinto\\"; a\\\\b"\r\n').args == [b'require "fileinto"; a\\b']


def test_literal_over_the_limit() -> None:
    reader = CommandReader(max_literal=10)
    with pytest.raises(LiteralTooLarge) as info:
        reader.feed_line(b'PUTSCRIPT "x" {11+}\r\n')
    assert info.value.size == 11 and info.value.command_line.startswith(b"PUTSCRIPT")


@pytest.mark.parametrize("line", [b'"unterminated\r\n', b"\r\n", b"GETSCRIPT foo\r\n", b'GETSCRIPT x*y\r\n'])
def test_bad_syntax(line: bytes) -> None:
    with pytest.raises(ParseError):
        read(line)


def test_responses() -> None:
    assert response("NO", "Sieve script `a' not found", "NONEXISTENT") == \
        b'NO (NONEXISTENT) "Sieve script `a\' not found"\r\n'
    assert response("OK") == b"OK\r\n"
    assert response("NO", "line 1\r\nline 2\r\n") == b"NO {16}\r\nline 1\r\nline 2\r\n\r\n"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_quote_round_trips(value: bytes) -> None:
    encoded = quote(value)
    if encoded.startswith(b"{"):
        head, _, body = encoded.partition(b"\r\n")
        cmd = read(b"PUTSCRIPT " + head + b"\r\n", body, b"\r\n")
    else:
        cmd = read(b"PUTSCRIPT " + encoded + b"\r\n")
    assert cmd.args == [value]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_any_line_parses_or_fails_cleanly(line: bytes) -> None:
    reader = CommandReader(max_literal=50)
    try:
        want = reader.feed_line(line.replace(b"\n", b"") + b"\r\n")
        if want:
            reader.feed_literal(b"x" * want)
            reader.feed_line(b"\r\n")
        reader.command()
    except ParseError:
        pass
