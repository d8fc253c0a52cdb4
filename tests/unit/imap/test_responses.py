"""Response serialisation and date parsing (RFC 3501 4.3, 9)."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maa_server.protocols.imap.args import flags
from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.parser import Command, CommandParser, NeedLiteral
from maa_server.protocols.imap.responses import (
    astring,
    mailbox_name,
    nstring,
    ordered_flags,
    parse_date,
    parse_date_time,
    quoted_or_literal,
)
from maa_server.protocols.imap.tokens import Atom, String


def test_quoted_or_literal():
    assert quoted_or_literal("plain") == b'"plain"'
    assert quoted_or_literal('a"b\\c') == b'"a\\"b\\\\c"'
    assert quoted_or_literal("Grüße") == b"{7}\r\nGr\xc3\xbc\xc3\x9fe"  # 8-bit: literal
    assert quoted_or_literal(b"two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert nstring(None) == b"NIL"


def test_astring_and_mailbox_names():
    assert astring("Archive/2024") == b"Archive/2024"
    assert astring("Sent Items") == b'"Sent Items"'
    assert astring("NIL") == b'"NIL"'
    assert astring("") == b'""'
    assert mailbox_name("inbox") == b"INBOX"
    assert mailbox_name("Entw&APw-rfe") == b"Entw&APw-rfe"


def test_flag_order_as_dovecot():
    assert ordered_flags({"$Label", "\\Seen", "\\Answered"}, recent=True) == [
        "\\Answered", "\\Seen", "\\Recent", "$Label"]


def test_date_time_rfc3501_forms():
    expected = calendar.timegm((1994, 2, 8, 5, 52, 25, 0, 0, 0))
    assert parse_date_time("07-Feb-1994 21:52:25 -0800") == expected
    assert parse_date_time(" 7-Feb-1994 21:52:25 -0800") == expected
    for bad in ["", "07-Foo-1994 21:52:25 -0800", "07-Feb-1994 25:00:00 +0000",
                "07-Feb-94 21:52:25 -0800", "07-Feb-1994 21:52:25 0800"]:
        assert parse_date_time(bad) is None
    assert parse_date("1-Feb-1994") == (1994, 2, 1)
    assert parse_date("1-Feb-94") is None


def test_store_flag_validation():
    assert flags([Atom("\\seen"), Atom("$Fw"), Atom("\\SEEN")]) == ["\\Seen", "$Fw"]
    with pytest.raises(ImapParseError):
        flags([Atom("\\Recent")])
    with pytest.raises(ImapParseError):
        flags([Atom("\\Bogus")])
    with pytest.raises(ImapParseError):
        flags([String(b"x")])


@given(st.binary(max_size=60))
def test_any_string_round_trips_through_the_parser(value):
    p = CommandParser()
    wire = b"t X " + quoted_or_literal(value)
    head, sep, rest = wire.partition(b"}\r\n")
    if sep:
        r = p.feed_line(head + b"}")
        assert isinstance(r, NeedLiteral) and r.size == len(value)
        p.feed_literal(rest)
        cmd = p.feed_line(b"")
    else:
        cmd = p.feed_line(wire)
    assert isinstance(cmd, Command)
    assert cmd.args[0].value == value
