"""Typed values: bool, uint, octal, port, size, time, enum (spec 1.5, doveconf 2.3.19)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maa_server.config.values import (
    format_size,
    format_time,
    format_value,
    normalize,
    parse_bool,
    parse_octal,
    parse_port,
    parse_size,
    parse_time,
    parse_uint,
    parse_value,
)


@pytest.mark.parametrize(("text", "value"), [("yes", True), ("YES", True), ("y", True), ("1", True),
                                             ("no", False), ("No", False)])
def test_bool(text: str, value: bool) -> None:
    assert parse_bool(text) is value


@pytest.mark.parametrize("text", ["0", "true", "", "maybe"])
def test_bool_errors(text: str) -> None:
    with pytest.raises(ValueError, match=r"Invalid boolean value: .* \(use yes or no\)"):
        parse_bool(text)


def test_uint_port_octal() -> None:
    assert parse_uint("10") == 10
    with pytest.raises(ValueError, match="^Invalid number abc: Not a valid number$"):
        parse_uint("abc")
    with pytest.raises(ValueError, match="^Invalid number : Not a valid number$"):
        parse_uint("")
    assert parse_port("143") == 143
    with pytest.raises(ValueError, match="^Invalid port number abc$"):
        parse_port("abc")
    with pytest.raises(ValueError):
        parse_port("70000")
    assert parse_octal("0666") == 0o666
    assert parse_octal("438") == 438
    with pytest.raises(ValueError):
        parse_octal("0999")


@pytest.mark.parametrize(("text", "size", "printed"), [
    ("64k", 65536, "64 k"), ("64 k", 65536, "64 k"), ("1MiB", 1048576, "1 M"), ("10M", 10485760, "10 M"),
    ("3 kb", 3072, "3 k"), ("3 b", 3, "3 B"), ("1000", 1000, "1000 B"), ("1048576", 1048576, "1 M"),
    ("0", 0, "0"), ("2G", 2 * 1024**3, "2 G"), ("1T", 1024**4, "1 T"),
])
def test_size(text: str, size: int, printed: str) -> None:
    assert parse_size(text) == size
    assert format_size(size) == printed


@pytest.mark.parametrize("text", ["5x", "abc", "3 x", "k", "1Mx"])
def test_size_errors(text: str) -> None:
    with pytest.raises(ValueError, match=f"^Invalid size: {text}$"):
        parse_size(text)


@pytest.mark.parametrize(("text", "seconds", "printed"), [
    ("2 secs", 2, "2 secs"), ("2sec", 2, "2 secs"), ("2 se", 2, "2 secs"), ("2 minutes", 120, "2 mins"),
    ("2 mi", 120, "2 mins"), ("2M", 120, "2 mins"), ("120 s", 120, "2 mins"), ("1h", 3600, "1 hours"),
    ("1 days", 86400, "1 days"), ("86400s", 86400, "1 days"), ("2 we", 1209600, "2 weeks"),
    ("90s", 90, "90 secs"), ("0", 0, "0"), ("2000ms", 2, "2 secs"),
])
def test_time(text: str, seconds: float, printed: str) -> None:
    assert parse_time(text) == seconds
    assert format_time(parse_time(text)) == printed


def test_time_errors() -> None:
    with pytest.raises(ValueError, match=r"^Time interval '5' is missing units \(add e.g. 's' for seconds\)$"):
        parse_time("5")
    with pytest.raises(ValueError, match="^Invalid time interval: 3x$"):
        parse_time("3x")
    with pytest.raises(ValueError, match="^Invalid time interval: 1h 30m$"):
        parse_time("1h 30m")
    with pytest.raises(ValueError, match="^Milliseconds not supported for this setting: 500ms$"):
        parse_time("500ms")
    assert parse_time("500ms", msecs=True) == 0.5


def test_enum() -> None:
    assert parse_value("enum:yes:no:required", "required") == "required"
    with pytest.raises(ValueError, match="^Invalid value: maybe$"):
        parse_value("enum:yes:no:required", "maybe")


def test_normalize_keeps_unparseable_text() -> None:
    assert normalize("size", "128k") == "128 k"
    assert normalize("size", "$x") == "$x"
    assert format_value("octal", 0o600) == "0600"
    assert format_value("bool", True) == "yes"


@given(st.integers(min_value=0, max_value=2**40))
def test_size_round_trip(value: int) -> None:
    assert parse_size(format_size(value)) == value


@given(st.integers(min_value=0, max_value=10**8))
def test_time_round_trip(value: int) -> None:
    assert parse_time(format_time(value)) == value


def test_auth_verbose_passwords_values() -> None:
    for text in ("no", "yes", "plain", "sha1", "sha1:8"):
        assert parse_value("verbose_passwords", text) == text
    with pytest.raises(ValueError, match="auth_verbose_passwords: Invalid value 'xyz'"):
        parse_value("verbose_passwords", "xyz")


def test_table_types_agree_with_doveconf_for_a_few_settings() -> None:
    from maa_server.config.table import SECTION_SETTINGS, SETTINGS

    assert SETTINGS["ssl"] == ("enum:yes:no:required", "yes")
    assert SETTINGS["submission_ssl"][0] == "enum:no:smtps:submissions:starttls"
    assert SETTINGS["auth_verbose_passwords"] == ("verbose_passwords", "no")
    assert SETTINGS["imap_max_line_length"] == ("size", "64 k")
    assert SETTINGS["mail_max_lock_timeout"][0] == "time"
    assert SECTION_SETTINGS["inet_listener"]["ssl"] == ("bool", "no")
    assert SECTION_SETTINGS["unix_listener"]["mode"] == ("octal", "0600")
    assert len(SETTINGS) > 300
