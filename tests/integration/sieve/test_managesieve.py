"""ManageSieve (RFC 5804) over a loopback socket, answers byte for byte as
the real Pigeonhole 0.5.19 managesieve gave them (recorded by hand against
a private Dovecot 2.3.19 with the same quota settings)."""

from __future__ import annotations

import base64
import logging
import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sieve.client import RawSieve
from tests.integration.sieve.harness import SieveStack

QUOTAS = """  sieve_quota_max_scripts = 3
  sieve_quota_max_storage = 2k
  sieve_max_script_size = 1k
"""
SIEVE_LINE = (b'"SIEVE" "fileinto reject envelope encoded-character vacation subaddress '
              b'comparator-i;ascii-numeric relational regex imap4flags copy include variables body '
              b'enotify environment mailbox date index ihave duplicate mime foreverypart extracttext"\r\n')


@pytest.fixture
def quota_stack(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[SieveStack]:
    caplog.set_level(logging.INFO, logger="maa")
    running = SieveStack(tmp_path, plugin=QUOTAS).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(quota_stack: SieveStack) -> Iterator[RawSieve]:
    c = RawSieve(quota_stack.sieve_port)
    try:
        yield c
    finally:
        c.close()


def logged_in(client: RawSieve) -> RawSieve:
    assert client.login() == b'OK "Logged in."\r\n'
    return client


def test_greeting_and_capability_shape(client: RawSieve) -> None:
    expected = (b'"IMPLEMENTATION" "Dovecot (Debian) Pigeonhole"\r\n' + SIEVE_LINE
                + b'"NOTIFY" "mailto"\r\n"SASL" "PLAIN LOGIN"\r\n"STARTTLS"\r\n"VERSION" "1.0"\r\n')
    assert client.greeting == expected + b'OK "Dovecot (Debian) ready."\r\n'
    assert client.cmd("CAPABILITY") == expected + b'OK "Capability completed."\r\n'


def test_capability_after_login_has_maxredirects_and_no_sasl(client: RawSieve) -> None:
    logged_in(client)
    assert client.cmd("CAPABILITY") == (
        b'"IMPLEMENTATION" "Dovecot (Debian) Pigeonhole"\r\n' + SIEVE_LINE
        + b'"MAXREDIRECTS" "4"\r\n"NOTIFY" "mailto"\r\n"VERSION" "1.0"\r\nOK "Capability completed."\r\n')


def test_starttls_then_capabilities_again(client: RawSieve) -> None:
    after = client.starttls()
    assert b'"STARTTLS"' not in after and b'"SASL" "PLAIN LOGIN"' in after
    assert after.endswith(b'OK "TLS negotiation successful."\r\n')
    assert logged_in(client)


def test_authenticate_with_continuation_and_bad_response(client: RawSieve) -> None:
    assert client.challenge('AUTHENTICATE "PLAIN"') == b'""\r\n'
    assert client.cmd("AGFsaWNlAHNlY3JldA==") == b'NO "Invalid AUTHENTICATE client response."\r\n'
    assert client.challenge('AUTHENTICATE "PLAIN"') == b'""\r\n'
    token = base64.b64encode(b"\0alice\0secret")
    assert client.cmd(b'{%d+}\r\n' % len(token) + token) == b'OK "Logged in."\r\n'


def test_wrong_password(client: RawSieve) -> None:
    assert client.login(password="nope") == b'NO "Authentication failed."\r\n'


def test_commands_before_login(client: RawSieve) -> None:
    assert client.cmd('NOOP "abc"') == b'OK (TAG "abc") "Done"\r\n'
    assert client.cmd("NOOP") == b'OK "NOOP Completed"\r\n'
    assert client.cmd("LISTSCRIPTS") == b'NO "Error in MANAGESIEVE command received by server."\r\n'
    assert client.cmd("FOO") == b'NO "Error in MANAGESIEVE command FOO: Unknown command."\r\n'
    # managesieve-login gives up on the third bad command
    assert client.cmd("LISTSCRIPTS") == b'BYE "Too many invalid MANAGESIEVE commands."\r\n'


def test_script_lifecycle_and_pigeonhole_layout(quota_stack: SieveStack, client: RawSieve,
                                                caplog: pytest.LogCaptureFixture) -> None:
    logged_in(client)
    home = quota_stack.home("alice")
    assert client.cmd("LISTSCRIPTS") == b'OK "Listscripts completed."\r\n'
    assert client.cmd(b'PUTSCRIPT "a" {7+}\r\nkeep;\r\n\r\n') == b'OK "PUTSCRIPT completed."\r\n'
    assert client.cmd(b'PUTSCRIPT "b" {10}\r\ndiscard;\r\n\r\n') == b'OK "PUTSCRIPT completed."\r\n'
    assert client.cmd('SETACTIVE "a"') == b'OK "Setactive completed."\r\n'
    assert os.readlink(home / ".dovecot.sieve") == "sieve/a.sieve"
    assert stat.S_IMODE((home / "sieve").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "sieve" / "a.sieve").stat().st_mode) == 0o600
    assert (home / "sieve" / "tmp").is_dir()
    assert client.cmd("LISTSCRIPTS") == b'"a" ACTIVE\r\n"b"\r\nOK "Listscripts completed."\r\n'
    assert client.cmd('GETSCRIPT "a"') == b'{7}\r\nkeep;\r\n\r\nOK "Getscript completed."\r\n'
    assert client.cmd('DELETESCRIPT "a"') == b'NO (ACTIVE) "Cannot delete the active Sieve script."\r\n'
    assert client.cmd('RENAMESCRIPT "a" "z"') == b'OK "Renamescript completed."\r\n'
    assert os.readlink(home / ".dovecot.sieve") == "sieve/z.sieve"
    assert client.cmd('RENAMESCRIPT "z" "b"') == (
        b'NO (ALREADYEXISTS) "A sieve script with that name already exists."\r\n')
    assert client.cmd('SETACTIVE ""') == b'OK "Active script is now deactivated."\r\n'
    assert not (home / ".dovecot.sieve").is_symlink()
    assert client.cmd('SETACTIVE ""') == b'OK "No scripts currently active."\r\n'
    assert client.cmd('DELETESCRIPT "z"') == b'OK "Deletescript completed."\r\n'
    assert client.cmd("LISTSCRIPTS") == b'"b"\r\nOK "Listscripts completed."\r\n'
    assert client.cmd("LOGOUT") == b'OK "Logout completed."\r\n'
    assert client.file.read() == b""  # closed, after the disconnect line is logged
    lines = [(r.dovecot_prefix, r.getMessage()) for r in caplog.records  # type: ignore[attr-defined]
             if getattr(r, "dovecot_prefix", "").startswith("managesieve")]
    assert lines[0][0] == "managesieve-login"
    assert lines[0][1].startswith("Login: user=<alice>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, "
                                  f"mpid={os.getpid()}, secured, session=<")
    assert lines[1][0].startswith("managesieve(alice)<")
    assert lines[1][1] == "Failed to delete script `a': Cannot delete the active Sieve script."
    assert lines[2][1] == "Failed to rename script `z' to `b': A sieve script with that name already exists."
    assert lines[-1][1].startswith("Disconnected: Logged out bytes=")


@pytest.mark.parametrize("command", ['GETSCRIPT "nope"', 'DELETESCRIPT "nope"', 'SETACTIVE "nope"',
                                     'RENAMESCRIPT "nope" "x"'])
def test_nonexistent(client: RawSieve, command: str, caplog: pytest.LogCaptureFixture) -> None:
    logged_in(client)
    assert client.cmd(command) == b'NO (NONEXISTENT) "Sieve script `nope\' not found"\r\n'
    text = {"GET": "Failed to retrieve script `nope'", "DEL": "Failed to delete script `nope'",
            "SET": "Failed to open script `nope' for activation",
            "REN": "Failed to open script `nope' for rename to `x'"}[command[:3]]
    assert f"{text}: Sieve script `nope' not found" in [r.getMessage() for r in caplog.records]


def test_checkscript_and_putscript_errors(client: RawSieve) -> None:
    logged_in(client)
    assert client.cmd('CHECKSCRIPT "keep;"') == b'OK "Script checked successfully."\r\n'
    report = (b"line 1: error: require command: unknown Sieve capability `foo'.\r\n"
              b"line 1: error: unknown command 'frob' (only reported once at first occurrence).\r\n"
              b"error: validation failed.\r\n")
    assert client.cmd('CHECKSCRIPT "require \\"foo\\"; frob;"') == b"NO {%d}\r\n%s\r\n" % (len(report), report)
    put = b"".join(b"q: " + line + b"\r\n" for line in report.split(b"\r\n")[:-1])
    assert client.cmd('PUTSCRIPT "q" "require \\"foo\\"; frob;"') == b"NO {%d}\r\n%s\r\n" % (len(put), put)
    parse = (b"line 2: error: expected end of command ';' or the beginning of a compound block '{', "
             b"but found end of file.\r\nerror: parse failed.\r\n")
    assert client.cmd(b"CHECKSCRIPT {9+}\r\nkeep;\r\nx\r\n") == b"NO {%d}\r\n%s\r\n" % (len(parse), parse)
    assert client.cmd('PUTSCRIPT "x/y" "keep;"') == b'NO "Invalid Sieve script name `x/y\'."\r\n'
    assert client.cmd('PUTSCRIPT "" "keep;"') == b'NO "Invalid Sieve script name `\'."\r\n'


def test_argument_errors(client: RawSieve) -> None:
    logged_in(client)
    assert client.cmd('NOOP "a" "b"') == b'NO "Error in MANAGESIEVE command NOOP: Too many arguments."\r\n'
    assert client.cmd('PUTSCRIPT "c" "keep;" "x"') == (
        b'NO "Error in MANAGESIEVE command PUTSCRIPT: Too many command arguments."\r\n')
    assert client.cmd("GETSCRIPT") == b'NO "Error in MANAGESIEVE command GETSCRIPT: Missing arguments."\r\n'
    assert client.cmd('HAVESPACE "c" "abc"') == b'NO "Invalid scriptsize argument."\r\n'
    assert client.cmd('AUTHENTICATE "PLAIN"') == (
        b'NO "Error in MANAGESIEVE command AUTHENTICATE: Unknown command."\r\n')
    assert client.cmd("STARTTLS") == b'NO "Error in MANAGESIEVE command STARTTLS: Unknown command."\r\n'


def test_quotas(client: RawSieve) -> None:
    logged_in(client)
    assert client.cmd(b'PUTSCRIPT "big" {2000+}\r\n' + b"#" * 1998 + b"\r\n\r\n") == (
        b'NO (QUOTA/MAXSIZE) "Script is too large (max 1024 bytes)."\r\n')
    assert client.cmd("NOOP") == b'OK "NOOP Completed"\r\n'  # the literal was skipped whole
    assert client.cmd('HAVESPACE "c" 5000') == b'NO (QUOTA/MAXSIZE) "Script is too large (max 1024 bytes)."\r\n'
    body = b"#" * 900 + b"\r\n"
    for name in (b"a", b"b"):
        assert client.cmd(b'PUTSCRIPT "%s" {%d+}\r\n' % (name, len(body)) + body + b"\r\n") == b'OK "PUTSCRIPT completed."\r\n'
    storage = b'NO (QUOTA/MAXSTORAGE) "Script storage quota exceeded (max 2048 bytes)."\r\n'
    assert client.cmd(b'PUTSCRIPT "c" {%d+}\r\n' % len(body) + body + b"\r\n") == storage
    assert client.cmd('HAVESPACE "d" 300') == storage
    assert client.cmd('HAVESPACE "d" 100') == b'OK "Putscript would succeed."\r\n'
    assert client.cmd('PUTSCRIPT "c" "keep;"') == b'OK "PUTSCRIPT completed."\r\n'
    assert client.cmd('PUTSCRIPT "d" "keep;"') == (
        b'NO (QUOTA/MAXSCRIPTS) "Script count quota exceeded (max 3 scripts)."\r\n')
    assert client.cmd('HAVESPACE "c" 10') == b'OK "Putscript would succeed."\r\n'  # replacing c


def login_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if getattr(r, "dovecot_prefix", "") == "managesieve-login"]


def _closed(client: RawSieve) -> None:
    assert client.file.read() == b""  # the server closed: its last line is logged


def test_disconnect_lines_before_login(quota_stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    first = RawSieve(quota_stack.sieve_port)
    first.cmd("LOGOUT")
    _closed(first)
    second = RawSieve(quota_stack.sieve_port)
    assert second.login(password="bad") == b'NO "Authentication failed."\r\n'
    second.sock.shutdown(socket.SHUT_WR)
    _closed(second)
    # (the seconds depend on the machine's speed: not compared)
    lines = [re.sub(r"session=<[^>]+>", "session=<S>", re.sub(r" in \d+ secs", " in N secs", line))
             for line in login_lines(caplog)]
    assert lines == [
        ("Disconnected: Aborted login by logging out (no auth attempts in N secs): user=<>, rip=127.0.0.1, "
         "lip=127.0.0.1, secured, session=<S>"),
        ("Disconnected: Connection closed (auth failed, 1 attempts in N secs): user=<alice>, method=PLAIN, "
         "rip=127.0.0.1, lip=127.0.0.1, secured, session=<S>")]


def test_connection_closed_after_login(client: RawSieve, caplog: pytest.LogCaptureFixture) -> None:
    logged_in(client)
    client.sock.shutdown(socket.SHUT_WR)
    _closed(client)
    last = [r.getMessage() for r in caplog.records
            if getattr(r, "dovecot_prefix", "").startswith("managesieve(alice)")][-1]
    assert re.fullmatch(r"Connection closed bytes=\d+/\d+", last)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")
def test_scripts_belong_to_the_mail_user_when_written_as_root(tmp_path: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    stack = SieveStack(tmp_path, uid=nobody.pw_uid, gid=nobody.pw_gid).start()
    try:
        client = logged_in(RawSieve(stack.sieve_port))
        assert client.cmd('PUTSCRIPT "a" "keep;"') == b'OK "PUTSCRIPT completed."\r\n'
        assert client.cmd('SETACTIVE "a"') == b'OK "Setactive completed."\r\n'
        client.close()
        home = stack.home("alice")
        for path in (home / "sieve", home / "sieve" / "tmp", home / "sieve" / "a.sieve", home / ".dovecot.sieve"):
            st = path.lstat()
            assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), path
    finally:
        stack.stop()


def test_configured_extensions_are_listed_in_pigeonholes_order(tmp_path: Path) -> None:
    # Observed from Pigeonhole 0.5.19 with the same sieve_extensions.
    stack = SieveStack(tmp_path, plugin="  sieve_extensions = +spamtest +spamtestplus +virustest "
                                        "+vacation-seconds\n").start()
    try:
        client = RawSieve(stack.sieve_port)
        assert client.greeting.splitlines()[1] == (
            b'"SIEVE" "fileinto reject envelope encoded-character vacation subaddress '
            b'comparator-i;ascii-numeric relational regex imap4flags copy include variables body enotify '
            b'environment mailbox date index ihave duplicate mime foreverypart extracttext vacation-seconds '
            b'spamtest spamtestplus virustest"')
        client.close()
    finally:
        stack.stop()
