"""POP3 settings that change behaviour (spec 2.7): pop3_save_uidl (also as a
userdb field), pop3_lock_session, mail_max_userip_connections, APOP,
pop3_deleted_flag, pop3_enable_last, the inactivity timeout."""

from __future__ import annotations

import hashlib
import poplib
import re
import time
from pathlib import Path

import pytest

from maa_server.protocols.pop3 import lock, session
from tests.integration.pop3.maa_pop3_harness import PASSWORD, MaaStack, put_message

MSG = b"From: a@example.org\nSubject: s\n\nbody\n"


def started(tmp_path: Path, config: str, **kwargs: object) -> MaaStack:
    stack = MaaStack(tmp_path, extra_config="auth_failure_delay = 0\n" + config, **kwargs)  # type: ignore[arg-type]
    for i in range(2):
        put_message(stack.maildir("alice"), f"170000000{i}.M{i}P1.host", MSG)
    return stack.start()


def login(stack: MaaStack, user: str = "alice") -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=10)
    client.user(user)
    client.pass_(PASSWORD)
    return client


def uidlist(stack: MaaStack) -> str:
    return (stack.maildir("alice") / "dovecot-uidlist").read_text()


def test_save_uidl_freezes_uidls_across_format_changes(tmp_path: Path) -> None:
    stack = started(tmp_path, "pop3_save_uidl = yes\npop3_uidl_format = %v-%u")
    try:
        client = login(stack)
        _, first, _ = client.uidl()
        client.quit()
        assert first[0].endswith(b"-1")
        assert " P" in uidlist(stack)  # the P field of spec 5.5
        # Same Maildir, another template: the saved UIDLs stay (spec 5.13)
        stack.restart(stack.config_text.replace("pop3_uidl_format = %v-%u", "pop3_uidl_format = %f"))
        client = login(stack)
        _, again, _ = client.uidl()
        client.quit()
        assert again == first
    finally:
        stack.stop()


def test_save_uidl_from_userdb_field(tmp_path: Path) -> None:
    stack = started(tmp_path, "", user_fields={"alice": "userdb_pop3_save_uidl=yes"})
    try:
        client = login(stack)
        client.uidl()
        client.quit()
        assert re.search(r" P\S*", uidlist(stack))
        client = login(stack, "bob")
        client.uidl()
        client.quit()
    finally:
        stack.stop()


def test_lock_session_refuses_a_second_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "WAIT_SECS", 0.2)
    stack = started(tmp_path, "pop3_lock_session = yes")
    try:
        first = login(stack)
        second = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=10)
        second.user("alice")
        with pytest.raises(poplib.error_proto) as info:
            second.pass_(PASSWORD)
        assert info.value.args[0] == b"-ERR [IN-USE] Mailbox is locked by another POP3 session."
        first.quit()
        lock_file = stack.maildir("alice") / lock.LOCK_NAME
        for _ in range(100):  # the server releases it right after its last reply
            if not lock_file.exists():
                break
            time.sleep(0.05)
        third = login(stack)  # the lock went away with the first session
        third.quit()
    finally:
        stack.stop()


def test_max_userip_connections(tmp_path: Path) -> None:
    stack = started(tmp_path, "mail_max_userip_connections = 1")
    try:
        first = login(stack)
        second = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=10)
        second.user("alice")
        with pytest.raises(poplib.error_proto) as info:
            second.pass_(PASSWORD)
        assert info.value.args[0] == (b"-ERR [IN-USE] Maximum number of connections from user+IP "
                                      b"exceeded (mail_max_userip_connections=1)")
        first.quit()
    finally:
        stack.stop()


def test_apop_when_enabled(tmp_path: Path) -> None:
    stack = started(tmp_path, "auth_mechanisms = plain login apop")
    try:
        client = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=10)
        # pop3-login's get_apop_challenge: <pid.connect-id.time.base64(16 random)@host>
        assert re.fullmatch(rb"\+OK Dovecot \(Debian\) ready\. "
                            rb"<[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+\.[A-Za-z0-9+/]{22}==@\S+>",
                            client.getwelcome())
        assert client.apop("alice", PASSWORD) == b"+OK Logged in."
        client.quit()
        client = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=10)
        digest = hashlib.md5(b"wrong").hexdigest()
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Authentication failed."):
            client._shortcmd(f"APOP alice {digest}")
        client.quit()
    finally:
        stack.stop()


def test_deleted_flag_hides_instead_of_expunging(tmp_path: Path) -> None:
    # quoted: unquoted `$name` is a config variable reference (doveconf refuses it too)
    stack = started(tmp_path, 'pop3_deleted_flag = "$POP3Deleted"')
    try:
        client = login(stack)
        client.dele(1)
        client.quit()
        names = [p.name for sub in ("new", "cur") for p in (stack.maildir("alice") / sub).iterdir()]
        assert len(names) == 2  # still on disk, flagged with a keyword letter
        assert (stack.maildir("alice") / "dovecot-keywords").read_text().find("$POP3Deleted") >= 0
        client = login(stack)
        assert client.stat()[0] == 1
        client.quit()
    finally:
        stack.stop()


def test_last_when_enabled(tmp_path: Path) -> None:
    stack = started(tmp_path, "pop3_enable_last = yes")
    try:
        client = login(stack)
        assert client._shortcmd("LAST") == b"+OK 0"
        client.retr(2)
        assert client._shortcmd("LAST") == b"+OK 2"
        client.quit()
    finally:
        stack.stop()


def test_inactivity_disconnects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture) -> None:
    """Observed with Dovecot 2.3.19 after 600 s without input: `-ERR
    Disconnected for inactivity.`, close, and `Disconnected: Inactivity - no
    input for 600 secs top=0/0, retr=0/0, del=0/0, size=0`."""
    import logging

    assert session.IDLE_TIMEOUT == 600.0  # RFC 1939 section 3: at least 10 minutes
    caplog.set_level(logging.INFO, logger="maa")
    monkeypatch.setattr(session, "IDLE_TIMEOUT", 1.0)
    stack = started(tmp_path, "")
    try:
        client = login(stack)
        assert client._getline()[0] == b"-ERR Disconnected for inactivity."
        assert client.file.readline() == b""  # closed
        client.close()
        wanted = "Disconnected: Inactivity - no input for 1 secs top=0/0, retr=0/0, del=0/"
        for _ in range(100):
            if any(r.getMessage().startswith(wanted) for r in list(caplog.records)):
                break
            time.sleep(0.05)
        assert any(r.getMessage().startswith(wanted) for r in list(caplog.records))
    finally:
        stack.stop()


def test_nologin_reason_is_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="maa")
    stack = MaaStack(tmp_path, users=("alice", "carol"), extra_config="auth_failure_delay = 0",
                     user_fields={"carol": "nologin=y reason=Account_moved"}).start()
    try:
        client = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=10)
        client.user("carol")
        with pytest.raises(poplib.error_proto) as info:
            client.pass_(PASSWORD)
        assert info.value.args[0] == b"-ERR [AUTH] Account_moved"
        client.quit()
        for _ in range(100):
            lines = [r.getMessage() for r in list(caplog.records)]
            if any("successful auths" in line for line in lines):
                break
            time.sleep(0.05)
        assert any(line.startswith("Disconnected: Aborted login by logging out "
                                   "(internal failure, 1 successful auths): user=<carol>")
                   for line in lines), lines
    finally:
        stack.stop()


def test_uidl_duplicates_rename(tmp_path: Path) -> None:
    stack = started(tmp_path, "pop3_uidl_format = %v\npop3_uidl_duplicates = rename")
    try:
        client = login(stack)
        _, lines, _ = client.uidl()
        client.quit()
        first = lines[0].split()[1]
        assert lines[1].split()[1] == first + b"-2"
    finally:
        stack.stop()


def test_client_workarounds(tmp_path: Path) -> None:
    stack = started(tmp_path, "pop3_client_workarounds = outlook-no-nuls oe-ns-eoh")
    try:
        put_message(stack.maildir("alice"), "1800000000.M9P1.host", b"Subject: nul\n\nA\x00B\n")
        put_message(stack.maildir("alice"), "1800000001.M9P1.host", b"Subject: only header\n")
        client = login(stack)
        _, lines, _ = client.retr(3)
        assert lines[-1] == b"A\x80B"  # outlook-no-nuls
        _, lines, _ = client.top(4, 0)
        assert lines == [b"Subject: only header", b""]  # oe-ns-eoh adds the end of header
        client.quit()
    finally:
        stack.stop()


def test_unusable_inbox_after_logged_in(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Dovecot's pop3 says `+OK Logged in.` and then fails opening INBOX
    (observed, 2.3.19, a Maildir that is a file): -ERR [SYS/TEMP] with the
    critical-error stamp, disconnect, and the reason in the log."""
    import logging
    import shutil
    import socket

    caplog.set_level(logging.INFO, logger="maa")
    stack = MaaStack(tmp_path, extra_config="auth_failure_delay = 0")
    shutil.rmtree(stack.maildir("alice"))
    stack.maildir("alice").write_text("not a directory")
    stack.start()
    try:
        sock = socket.create_connection(("127.0.0.1", stack.pop3_port), timeout=10)
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(f"USER alice\r\nPASS {PASSWORD}\r\n".encode())
        assert reader.readline() == b"+OK\r\n"
        assert reader.readline() == b"+OK Logged in.\r\n"
        assert re.fullmatch(rb"-ERR \[SYS/TEMP\] Internal error occurred\. Refer to server log for "
                            rb"more information\. \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]\r\n",
                            reader.readline())
        assert reader.readline() == b""  # closed
        sock.close()
        for _ in range(100):
            lines = [r.getMessage() for r in list(caplog.records)
                     if getattr(r, "dovecot_prefix", "").startswith("pop3(alice)<")]
            if any(m.startswith("Disconnected: ") for m in lines):
                break
            time.sleep(0.05)
        (line,) = [m for m in lines if m.startswith("Disconnected: ")]
        assert line.startswith("Disconnected: Couldn't open INBOX: ")
        assert line.endswith(" top=0/0, retr=0/0, del=0/0, size=0")
    finally:
        stack.stop()
