"""Extra-field lists, username_filter, allow_nets, user name normalisation."""

from __future__ import annotations

import pytest

from maa_server.auth.fields import (
    apply_fields,
    ip_in_networks,
    is_loopback,
    mechanisms_match,
    parse_fields,
    username_filter_matches,
)
from maa_server.auth.settings import AuthSettings
from maa_server.auth.username import UsernameError, fix_username, normalise_login


def test_parse_fields_no_escaping() -> None:
    # spec 3.5: `reason=Account\ disabled` gives reason `Account\`
    assert parse_fields(r"nologin=y reason=Account\ disabled") == [
        ("nologin", "y"), ("reason", "Account\\"), ("disabled", "")]
    assert parse_fields("userdb_mail=maildir:~/Maildir:LAYOUT=fs") == [
        ("userdb_mail", "maildir:~/Maildir:LAYOUT=fs")]


def test_apply_fields_protected_and_remove() -> None:
    target = {"a": "1", "b": "2"}
    apply_fields(target, {"a:protected": "x", "c:protected": "3", "b:remove": "", "d": "4"})
    assert target == {"a": "1", "c": "3", "d": "4"}


@pytest.mark.parametrize("patterns,user,expected", [
    ("*@example.com *@example2.com !user@example.com", "alice@example.com", True),
    ("*@example.com *@example2.com !user@example.com", "user@example.com", False),
    ("*@example.com *@example2.com !user@example.com", "bob@other.org", False),
    ("!root", "alice", True),
    ("!root", "root", False),
    ("a?c", "abc", True),
])
def test_username_filter(patterns: str, user: str, expected: bool) -> None:
    assert username_filter_matches(patterns, user) is expected


def test_mechanisms() -> None:
    assert mechanisms_match("", "PLAIN")
    assert mechanisms_match("plain, login", "LOGIN")
    assert not mechanisms_match("PLAIN LOGIN", "CRAM-MD5")
    assert mechanisms_match("none", "")


@pytest.mark.parametrize("ip,nets,expected", [
    ("192.0.2.7", "192.0.2.0/24", True),
    ("192.0.2.7", "10.0.0.0/8, 192.0.2.7", True),
    ("198.51.100.1", "192.0.2.0/24", False),
    ("::ffff:192.0.2.7", "192.0.2.0/24", True),
    ("2001:db8::1", "2001:db8::/32", True),
    ("", "local", True),
    ("127.0.0.1", "local", False),
])
def test_ip_in_networks(ip: str, nets: str, expected: bool) -> None:
    assert ip_in_networks(ip, nets) is expected


def test_loopback() -> None:
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.0.2.1")


def test_username_normalisation_order() -> None:
    s = AuthSettings(default_realm="example.com", username_translation={"#": "@"})
    assert fix_username("Alice", s) == "alice@example.com"
    # the realm is added before translation (auth_request_fix_username())
    assert fix_username("Bob#Example.org", s) == "bob@example.org@example.com"
    assert fix_username("Bob#Example.org", AuthSettings(username_translation={"#": "@"})) == \
        "bob@example.org"
    with pytest.raises(UsernameError, match="disallowed"):
        fix_username("al ice", s)
    with pytest.raises(UsernameError, match="Empty"):
        fix_username("x", AuthSettings(username_format="%d"))
    assert fix_username("Alice@Example.com", AuthSettings(username_format="%Ln")) == "alice"


def test_master_user_forms() -> None:
    s = AuthSettings(master_user_separator="*")
    assert normalise_login("Alice*Admin", s) == normalise_login("Alice*Admin", s)
    name = normalise_login("Alice*Admin", s)
    assert (name.user, name.master_user) == ("alice", "admin")
    # SASL PLAIN authzid form needs no separator setting
    name = normalise_login("admin", AuthSettings(), authzid="alice")
    assert (name.user, name.master_user) == ("alice", "admin")
    name = normalise_login("alice", AuthSettings(), authzid="alice")
    assert name.master_user == ""
