"""%-variable expansion (spec 3.7; src/lib/var-expand.c)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maa_server.auth.varexpand import ExpansionError, expand, user_parts

VARS = user_parts("Alice@Example.COM") | {"service": "imap", "rip": "192.0.2.7", "lip": "127.0.0.1",
                                          "home": "/home/alice"}


@pytest.mark.parametrize("template,expected", [
    ("%u", "Alice@Example.COM"),
    ("%Lu", "alice@example.com"),
    ("%Ln", "alice"),
    ("%Ud", "EXAMPLE.COM"),
    ("/etc/auth/%d/passwd", "/etc/auth/Example.COM/passwd"),
    ("%1Ln/%Ln", "a/alice"),
    ("%2.3n", "ice"),       # offset 2, width 3
    ("%-2n", "Ali"),        # negative width: all but the last 2
    ("%-3.2n", "ic"),       # negative offset counts from the end
    ("%Rn", "ecilA"),
    ("%%u", "%u"),
    ("%{user}", "Alice@Example.COM"),
    ("%{username}@%{domain}", "Alice@Example.COM"),
    ("%{missing:fallback}", "fallback"),
    ("%s:%r:%l", "imap:192.0.2.7:127.0.0.1"),
    ("%Mn", "64489c85dc2fe0787b85cd87214b3810"),  # md5("Alice")
    ("%Dd", "Example,dc=COM"),
    ("%h", "/home/alice"),
    ("no vars", "no vars"),
])
def test_expand(template: str, expected: str) -> None:
    assert expand(template, VARS) == expected


def test_zero_padding_does_not_truncate() -> None:
    assert expand("%04{n}", {"n": "1"}) == "0001"
    assert expand("%04{n}", {"n": "12345"}) == "12345"


def test_hex_modifier() -> None:
    assert expand("%X{n}", {"n": "255"}) == "ff"


@pytest.mark.parametrize("template", ["%q", "%{nosuchvar}", "%{user"])
def test_errors(template: str) -> None:
    with pytest.raises(ExpansionError):
        expand(template, VARS)


def test_user_parts() -> None:
    assert user_parts("bob") == {"user": "bob", "username": "bob", "domain": ""}
    assert user_parts("a@b@c") == {"user": "a@b@c", "username": "a", "domain": "b@c"}


@given(st.text(alphabet=st.characters(blacklist_characters="%"), max_size=60))
def test_text_without_percent_is_unchanged(text: str) -> None:
    assert expand(text, VARS) == text


@given(st.text(max_size=40))
def test_expand_never_crashes_unexpectedly(text: str) -> None:
    try:
        expand(text, VARS)
    except ExpansionError:
        pass


# Observed with Dovecot 2.3.19: userdb static home=/h/<template>, doveadm user -f home alice@example.com
@pytest.mark.parametrize("template,expected", [
    ("%{md5:user}", "c160f8cc69a4f0bf2b0362752353d060"),
    ("%{sha256;truncate=32:user}", "ff8d9819"),
    ("%{sha1;format=base64:user}", "/COYpz3VTWI3xP21j9fXU0fPWvM="),
    ("%2.256Nu", "bf"),
    ("%4.16Nn", "0005"),
    ("%Nu", "69a4f0bf"),
    ("%4Hu", "1"),
    ("%Hu", "2481bd"),
])
def test_hashes_as_dovecot(template: str, expected: str) -> None:
    assert expand(template, user_parts("alice@example.com")) == expected
