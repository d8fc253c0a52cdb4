"""passwd-file parsing and reloading (spec 3.5; db-passwd-file.c)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maa_server.auth.chain import PassdbResult
from maa_server.auth.drivers.base import DriverError
from maa_server.auth.drivers.passwd_file import (
    PasswdFilePassdb,
    PasswdFileUserdb,
    parse_line,
)
from maa_server.auth.varexpand import user_parts

LAB = """\
alice:{SHA512-CRYPT}$6$13nsU1rQi2eNlQSs$6BhuF.mKePpAzhWpwsZt2PKgm0YQNII04jEP.lvS22k9FsRokYzT.L1qvzQqJv2DmXvP0Bo56n5tnUVeMAt9S.:5000:5000::/var/vmail/alice::
bob:{PLAIN}secret:5001:5000::/var/vmail/bob::userdb_mail=maildir:~/Maildir:LAYOUT=fs
carol:{PLAIN}secret:5002:5000::/var/vmail/carol::nologin=y reason=Account\\ disabled
"""


def test_parse_full_line() -> None:
    entry = parse_line("bob:{PLAIN}secret:5001:5000::/var/vmail/bob::userdb_mail=maildir:~/Maildir:LAYOUT=fs")
    assert entry is not None
    assert (entry.user, entry.password, entry.uid, entry.gid, entry.home) == \
        ("bob", "{PLAIN}secret", 5001, 5000, "/var/vmail/bob")
    assert entry.extra == [("userdb_mail", "maildir:~/Maildir:LAYOUT=fs")]


@pytest.mark.parametrize("line", ["", "# comment", ":ignored"])
def test_ignored_lines(line: str) -> None:
    assert parse_line(line) is None


def test_short_lines() -> None:
    deny = parse_line("baduser")
    assert deny is not None and deny.password is None and not deny.has_userdb
    only_pw = parse_line("u:{PLAIN}x")
    assert only_pw is not None and only_pw.password == "{PLAIN}x" and not only_pw.has_userdb
    empty_ids = parse_line("u:x:::")
    assert empty_ids is not None and empty_ids.has_userdb and empty_ids.uid is None


def test_invalid_uid_rejected() -> None:
    with pytest.raises(ValueError, match="invalid UID"):
        parse_line("u:x:0:100")


def test_pwdfile_suffix_form() -> None:
    entry = parse_line("u:5ebe2294ecd0e0f08eab7690d2a6ee69[34]")
    assert entry is not None and entry.password == "{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69"


def test_args_errors() -> None:
    with pytest.raises(DriverError, match="Unknown setting"):
        PasswdFilePassdb("foo=bar /etc/x")
    with pytest.raises(DriverError, match="Missing args"):
        PasswdFilePassdb("scheme=PLAIN")
    assert PasswdFilePassdb("scheme=blf-crypt /x").default_scheme == "BLF-CRYPT"


async def test_lookup_and_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(LAB)
    passdb = PasswdFilePassdb(f"scheme=CRYPT {path}")
    carol = await passdb.lookup("carol", user_parts("carol"))
    assert carol.result is PassdbResult.OK
    assert carol.fields == {"nologin": "y", "reason": "Account\\", "disabled": ""}
    bob = await passdb.lookup("bob", user_parts("bob"))
    assert bob.userdb_fields["mail"] == "maildir:~/Maildir:LAYOUT=fs"
    assert (await passdb.lookup("nobody", user_parts("nobody"))).result is PassdbResult.USER_UNKNOWN
    userdb = PasswdFileUserdb(str(path))
    result, fields = await userdb.lookup("bob", user_parts("bob"), {})
    assert result is PassdbResult.OK
    assert fields == {"uid": "5001", "gid": "5000", "home": "/var/vmail/bob",
                      "mail": "maildir:~/Maildir:LAYOUT=fs"}


async def test_per_domain_file(tmp_path: Path) -> None:
    (tmp_path / "example.com").mkdir()
    (tmp_path / "example.com" / "passwd").write_text("alice@example.com:{PLAIN}a\n")
    passdb = PasswdFilePassdb(f"{tmp_path}/%d/passwd")
    assert (await passdb.lookup("alice@example.com", user_parts("alice@example.com"))).result \
        is PassdbResult.OK
    # no file for the domain: unknown user, not an internal failure
    assert (await passdb.lookup("bob@other.org", user_parts("bob@other.org"))).result \
        is PassdbResult.USER_UNKNOWN


async def test_username_format(tmp_path: Path) -> None:
    (tmp_path / "users").write_text("alice:{PLAIN}a\n")
    passdb = PasswdFilePassdb(f"username_format=%n {tmp_path}/users")
    assert (await passdb.lookup("alice@example.com", user_parts("alice@example.com"))).result \
        is PassdbResult.OK


async def test_file_change_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("alice:{PLAIN}old\n")
    passdb = PasswdFilePassdb(str(path))
    assert (await passdb.lookup("alice", user_parts("alice"))).password == "{PLAIN}old"
    path.write_text("alice:{PLAIN}new\nbob:{PLAIN}b\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert (await passdb.lookup("alice", user_parts("alice"))).password == "{PLAIN}new"
    assert (await passdb.lookup("bob", user_parts("bob"))).result is PassdbResult.OK


async def test_duplicate_user_keeps_first(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("alice:{PLAIN}first\nalice:{PLAIN}second\n")
    look = await PasswdFilePassdb(str(path)).lookup("alice", user_parts("alice"))
    assert look.password == "{PLAIN}first"


async def test_unreadable_file_is_internal_failure(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_bytes(b"a:{PLAIN}x\n")
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("running as root: cannot make a file unreadable")
    look = await PasswdFilePassdb(str(path)).lookup("a", user_parts("a"))
    assert look.result is PassdbResult.INTERNAL_FAILURE


async def test_directory_reads_as_empty_file(tmp_path: Path) -> None:
    # as Dovecot 2.3.19 does (observed: "unknown user", no error)
    look = await PasswdFilePassdb(str(tmp_path)).lookup("a", user_parts("a"))
    assert look.result is PassdbResult.USER_UNKNOWN


def test_old_format_mail_after_empty_eighth_field() -> None:
    # db-passwd-file.c: an empty field after the shell means "old format":
    # the rest is the mail location.
    entry = parse_line("u:pw:1000:1000::/home/u:::maildir:~/Mail")
    assert entry is not None and entry.mail == "maildir:~/Mail" and entry.extra == []
    entry = parse_line("u:pw:1000:1000::/home/u:/bin/sh:maildir:~/Mail")
    assert entry is not None and entry.mail == "" and entry.extra == [("maildir:~/Mail", "")]
