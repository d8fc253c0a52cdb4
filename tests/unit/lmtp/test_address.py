"""RFC 5321 paths as Dovecot's LMTP parses them (texts observed on the wire)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maa_server.protocols.lmtp.address import (
    Address,
    PathError,
    decode_xtext,
    parse_params,
    parse_path,
    split_detail,
)


def test_plain_and_null_paths() -> None:
    assert parse_path("<alice@example.org>", allow_null=False) == (Address("alice", "example.org"), "")
    assert parse_path("<alice>", allow_null=False) == (Address("alice"), "")
    assert parse_path("<>", allow_null=True) == (Address(""), "")
    assert parse_path("<a@b> BODY=8BITMIME", allow_null=True) == (Address("a", "b"), "BODY=8BITMIME")


def test_source_route_is_dropped() -> None:
    # RFC 5321 section 4.1.2: A-d-l must be accepted and ignored
    assert parse_path("<@relay.example:alice@example.org>", False)[0] == Address("alice", "example.org")


def test_quoted_localpart() -> None:
    address, _ = parse_path('<"ali ce"@example.org>', False)
    assert address.localpart == "ali ce"
    assert str(address) == '"ali ce"@example.org'


@pytest.mark.parametrize(
    ("text", "allow_null", "message"),
    [
        (" <a@b>", True, "Unexpected whitespace before path"),
        ("<a@b", True, "Missing '>' at end of path"),
        ("a@b", True, "Missing '<' at beginning of path"),
        ("<a b@c>", True, "Invalid character in localpart"),
        ("<>", False, "Null path not allowed"),
    ],
)
def test_errors_match_dovecot(text: str, allow_null: bool, message: str) -> None:
    with pytest.raises(PathError) as info:
        parse_path(text, allow_null)
    assert str(info.value) == message


def test_detail_split_at_first_delimiter() -> None:
    assert split_detail("alice+detail", "+") == ("alice", "detail")
    assert split_detail("alice-x+y", "+-") == ("alice", "x+y")
    assert split_detail("alice", "+") == ("alice", "")
    assert split_detail("alice+x", "") == ("alice+x", "")


def test_params() -> None:
    assert parse_params("BODY=8BITMIME ORCPT=rfc822;a@b") == {"BODY": "8BITMIME", "ORCPT": "rfc822;a@b"}
    with pytest.raises(ValueError):
        parse_params("=x")


def test_xtext() -> None:
    # RFC 3461 section 4
    assert decode_xtext("a+2Bb@example.org") == "a+b@example.org"
    assert decode_xtext("plain") == "plain"


@given(st.text(max_size=60))
def test_parser_never_crashes(text: str) -> None:
    try:
        parse_path(text, allow_null=True)
    except PathError:
        pass
