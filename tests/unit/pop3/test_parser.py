"""POP3 command parsing and reply framing (RFC 1939 section 3), with the
argument errors Dovecot 2.3.19 sends (observed on the wire)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maa_server.protocols.pop3.parser import (
    ArgumentError,
    Command,
    dot_stuff,
    err,
    multiline,
    ok,
    parse_command,
    parse_msgnum,
    parse_size,
    to_crlf,
    top_of_message,
)


def test_command_name_is_case_insensitive_and_args_kept_raw() -> None:
    assert parse_command(b"list 1\r\n") == Command("LIST", "1")
    assert parse_command(b"TOP 1  2\n") == Command("TOP", "1  2")
    assert parse_command(b"QUIT\r\n") == Command("QUIT", "")
    assert parse_command(b"USER \r\n") == Command("USER", "")


@pytest.mark.parametrize(
    ("args", "then_space", "message"),
    [
        ("", False, "Invalid message number: "),
        ("a", False, "Invalid message number: a"),
        ("0", False, "There's no message 0."),
        ("4", False, "There's no message 4."),
        ("1 2", False, "Noise after message number:  2"),
        ("1", True, "Noise after message number: "),
        (" 1", False, "Invalid message number:  1"),
        ("99999999999", False, "Message number too large: 99999999999"),
    ],
)
def test_msgnum_errors_match_dovecot(args: str, then_space: bool, message: str) -> None:
    with pytest.raises(ArgumentError) as info:
        parse_msgnum(args, 3, then_space)
    assert str(info.value) == message


def test_msgnum_ok() -> None:
    assert parse_msgnum("3", 3, False) == (2, "")
    assert parse_msgnum("1 10", 3, True) == (0, "10")


@pytest.mark.parametrize(
    ("args", "message"),
    [("-1", "Invalid size: -1"), ("x", "Invalid size: x"), ("1 2", "Noise after size:  2")],
)
def test_size_errors_match_dovecot(args: str, message: str) -> None:
    with pytest.raises(ArgumentError) as info:
        parse_size(args)
    assert str(info.value) == message


def test_replies() -> None:
    assert ok() == b"+OK\r\n"
    assert ok("Logged in.") == b"+OK Logged in.\r\n"
    assert err("Unknown command.") == b"-ERR Unknown command.\r\n"
    assert multiline(ok("2 messages:"), ["1 55", "2 34"]) == b"+OK 2 messages:\r\n1 55\r\n2 34\r\n.\r\n"


def test_crlf_conversion_keeps_existing_crlf() -> None:
    assert to_crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"
    assert to_crlf(b"no newline") == b"no newline"


def test_dot_stuffing_rfc1939() -> None:
    # RFC 1939 section 3: lines starting with "." get one more.
    assert dot_stuff(b".a\r\nb\r\n..c\r\n") == b"..a\r\nb\r\n...c\r\n"
    assert dot_stuff(b"x\r\n.\r\n") == b"x\r\n..\r\n"
    # A message without a final line end still ends with CRLF before ".".
    assert dot_stuff(b"tail") == b"tail\r\n"


def test_top_of_message() -> None:
    msg = b"From: a@b\r\nSubject: hi\r\n\r\nline1\r\nline2\r\nline3\r\n"
    assert top_of_message(msg, 0) == b"From: a@b\r\nSubject: hi\r\n\r\n"
    assert top_of_message(msg, 1) == b"From: a@b\r\nSubject: hi\r\n\r\nline1\r\n"
    assert top_of_message(msg, 99) == msg
    assert top_of_message(b"From: a@b\r\n", 3) == b"From: a@b\r\n"
    assert top_of_message(b"\r\nbody\r\nmore\r\n", 1) == b"\r\nbody\r\n"


@given(st.binary(max_size=300))
def test_unstuffing_restores_the_message(data: bytes) -> None:
    crlf = to_crlf(data.replace(b"\r", b""))
    wire = dot_stuff(crlf) + b".\r\n"
    if not crlf:
        assert wire == b".\r\n"
        return
    lines = wire.split(b"\r\n")
    assert lines[-2:] == [b".", b""]
    body = [line[1:] if line.startswith(b".") else line for line in lines[:-2]]
    expected = crlf if crlf.endswith(b"\r\n") else crlf + b"\r\n"
    assert b"\r\n".join(body) + b"\r\n" == expected


@given(st.binary(max_size=200))
def test_parse_command_never_fails(line: bytes) -> None:
    cmd = parse_command(line)
    assert cmd.name == cmd.name.upper()
