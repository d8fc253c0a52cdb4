"""UIDL templates (pop3_uidl_format) expanded as Dovecot does (spec 5.13)."""

from __future__ import annotations

import pytest

from maa_server.protocols.pop3.uidl import (
    InvalidUidlFormat,
    UidlKeys,
    expand,
    make_unique,
    message_uidl,
    validate,
)

KEYS = UidlKeys(uid=1, uidvalidity=1795712500, filename="1000.M1P1.host", guid="1000.M1P1.host")


def test_default_format_matches_observed_dovecot() -> None:
    # spec 5.13: UIDVALIDITY 1795712500 (0x6b0865f4), UID 1..5
    assert expand("%08Xu%08Xv", KEYS) == "000000016b0865f4"
    assert expand("%08Xu%08Xv", UidlKeys(5, 1795712500, "f", "g")) == "000000056b0865f4"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("%f", "1000.M1P1.host"),
        ("%{filename}", "1000.M1P1.host"),
        ("%g", "1000.M1P1.host"),
        ("%v.%u", "1795712500.1"),
        ("%{uidvalidity}-%{uid}", "1795712500-1"),
        ("%Uf", "1000.M1P1.HOST"),
        ("%4f", "1000"),
        ("%5.4f", "M1P1"),
        ("%%%u", "%1"),
        ("%04u", "0001"),
        ("%Xv", "6b0865f4"),
    ],
)
def test_variables_and_modifiers(template: str, expected: str) -> None:
    assert expand(template, KEYS) == expected


def test_zero_padding_never_truncates() -> None:
    assert expand("%02u", UidlKeys(12345, 1, "f", "g")) == "12345"


def test_templates_dovecot_refuses() -> None:
    with pytest.raises(InvalidUidlFormat, match="doesn't contain any"):
        validate("static")
    # Dovecot 2.3: "Unknown pop3_uidl_format variable: %{" (observed)
    with pytest.raises(InvalidUidlFormat, match=r"variable: %\{"):
        validate("%{uid}")
    with pytest.raises(InvalidUidlFormat, match="variable: %x"):
        validate("%x")
    for good in ("%08Xu%08Xv", "%f", "%v.%u", "%g", "100%%%u"):
        validate(good)


def test_saved_uidl_wins() -> None:
    assert message_uidl("%08Xu%08Xv", KEYS, saved="frozen") == "frozen"


def test_duplicates_renamed() -> None:
    assert make_unique(["a", "b", "a", "a"]) == ["a", "b", "a-2", "a-3"]
