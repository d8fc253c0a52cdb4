"""mail_location parsing and %-variables (spec 2.4)."""

from __future__ import annotations

import pytest

from maa_server.storage.location import (
    LocationError,
    expand_variables,
    parse_mail_location,
)


def test_fs_layout_with_home():
    loc = parse_mail_location("maildir:~/Maildir:LAYOUT=fs", "bob", "/var/vmail/bob")
    assert (loc.root, loc.layout, loc.separator, loc.utf8) == ("/var/vmail/bob/Maildir", "fs", "/", False)


def test_default_is_maildirpp_and_options():
    loc = parse_mail_location("maildir:~/Maildir:INDEX=~/idx:CONTROL=~/ctl:UTF-8:INBOX=/var/mail/%u",
                              "erin", "/home/erin")
    assert loc.layout == "maildir++" and loc.separator == "."
    assert (loc.index, loc.control, loc.inbox, loc.utf8) == ("/home/erin/idx", "/home/erin/ctl", "/var/mail/erin", True)
    assert parse_mail_location("maildir:/m:INDEX=MEMORY", "u").index == "MEMORY"


def test_errors():
    with pytest.raises(LocationError, match="Unknown setting: UTF8"):
        parse_mail_location("maildir:~/Maildir:UTF8", "bob", "/h")
    with pytest.raises(LocationError, match="Unknown setting: FOO"):
        parse_mail_location("maildir:~/Maildir:FOO=1", "bob", "/h")
    with pytest.raises(LocationError, match="Home directory not set"):
        parse_mail_location("maildir:~/Maildir", "bob", "")
    with pytest.raises(LocationError):
        parse_mail_location("mbox:~/mail", "bob", "/h")


def test_double_colon_and_autodetect():
    assert parse_mail_location("maildir:/srv/a::b/Maildir", "u").root == "/srv/a:b/Maildir"
    assert parse_mail_location("", "u", "/home/u").root == "/home/u/Maildir"


def test_variables():
    assert expand_variables("/v/%d/%n/%u/%h", "Alice@Example.org", "/home/a") == \
        "/v/Example.org/Alice/Alice@Example.org//home/a"
    assert expand_variables("%Lu %Ud %1n %2.3n %%", "Alice@ex.org") == "alice@ex.org EX.ORG A ice %"
    assert expand_variables("%{user}/%{domain}/%x", "a@b") == "a@b/b/%x"
