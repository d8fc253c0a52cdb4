"""Sequence sets (RFC 3501 section 9)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.sequence import format_uid_set, parse_sequence_set


def test_rfc3501_example_resolves_in_13_message_mailbox():
    # RFC 3501 9: "2,4:7,9,12:*" is 2,4,5,6,7,9,12,13,14,15 for 15 messages.
    assert parse_sequence_set("2,4:7,9,12:*").resolve(15) == [2, 4, 5, 6, 7, 9, 12, 13, 14, 15]


def test_reversed_range_and_star():
    assert parse_sequence_set("5:2").resolve(10) == [2, 3, 4, 5]
    assert parse_sequence_set("*:4").resolve(6) == [4, 5, 6]
    # n:* with n above the last still names the last (RFC 3501 6.4.8).
    assert parse_sequence_set("22:*").resolve_in([1, 2, 21], 21) == [21]
    assert parse_sequence_set("*").resolve(0) == []


def test_out_of_range_and_contains():
    s = parse_sequence_set("1,5:*")
    assert s.contains(7, 9) and not s.contains(3, 9)
    assert parse_sequence_set("10").out_of_range(9)
    assert not parse_sequence_set("1:*").out_of_range(5)


@pytest.mark.parametrize("bad", ["", "0", "1:0", "a", "1,,2", "1:", "01", "4294967296", "-1"])
def test_invalid(bad):
    with pytest.raises(ImapParseError):
        parse_sequence_set(bad)


def test_saved_result():
    assert parse_sequence_set("$").saved
    with pytest.raises(ImapParseError):
        parse_sequence_set("$", allow_saved=False)


@given(st.lists(st.integers(min_value=1, max_value=500), unique=True))
def test_format_round_trip(values):
    values.sort()
    text = format_uid_set(values)
    if values:
        assert parse_sequence_set(text).resolve(500) == values
    else:
        assert text == ""
