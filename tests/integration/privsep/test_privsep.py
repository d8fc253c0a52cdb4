"""Started as root, each user's mail is touched only by a process running
as that user (issue #8 item 4; DESIGN "Processes")."""

from __future__ import annotations

import imaplib
import os
import poplib
import signal
import socket
import ssl
import stat
import time
from pathlib import Path
from typing import BinaryIO

from tests.integration.daemon.pki import TestCA

from .conftest import PASSWORD, Setup, SystemUser

MESSAGE = b"From: x@example.org\r\nSubject: privsep\r\n\r\nhello\r\n"


def _tls(setup: Setup) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(setup.ca_file))


def _logged_in(setup: Setup, user: SystemUser, port: str = "imap") -> tuple[socket.socket, BinaryIO]:
    """A raw IMAP connection (TLS on `imaps`) past the greeting and a
    successful LOGIN, and its reader."""
    raw = socket.create_connection(("127.0.0.1", setup.ports[port]), timeout=20)
    if port == "imaps":
        raw = _tls(setup).wrap_socket(raw, server_hostname="localhost")
    reader = raw.makefile("rb")
    reader.readline()
    raw.sendall(f"a LOGIN {user.name} {PASSWORD}\r\n".encode())
    assert reader.readline().startswith(b"a OK")
    return raw, reader


def _proc_ids(pid: int) -> tuple[list[int], list[int], list[int]]:
    """Real/effective/saved/fs uids and gids, and groups, of a process."""
    uids: list[int] = []
    gids: list[int] = []
    groups: list[int] = []
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "Uid":
            uids = [int(x) for x in value.split()]
        elif key == "Gid":
            gids = [int(x) for x in value.split()]
        elif key == "Groups":
            groups = [int(x) for x in value.split()]
    return uids, gids, groups


def _who(setup: Setup) -> list[list[str]]:
    done = setup.adm("who", "-1")
    assert done.returncode == 0, done.stderr
    return [line.split() for line in done.stdout.splitlines()[1:]]


def _assert_owned(user: SystemUser, root: Path) -> int:
    """Every file and folder under root belongs to the user, with the
    modes Dovecot creates (folders 0700, files 0600, the
    dovecot-uidvalidity.<hex> marker 0444). Returns how many were checked."""
    count = 0
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (user.uid, user.gid), path
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            assert mode == 0o700, (path, oct(mode))
        elif path.name.startswith("dovecot-uidvalidity."):
            assert mode == 0o444, (path, oct(mode))
        else:
            assert mode == 0o600, (path, oct(mode))
        count += 1
    return count


def _wait_for(predicate, what: str, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_imap_sessions_run_as_the_user_and_files_are_theirs(setup: Setup) -> None:
    a = setup.users["a"]
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as plain, \
            imaplib.IMAP4_SSL("127.0.0.1", setup.ports["imaps"], ssl_context=_tls(setup), timeout=20) as tls:
        assert plain.login(a.name, PASSWORD)[0] == "OK"
        assert plain.append("INBOX", None, None, MESSAGE)[0] == "OK"
        assert tls.login(a.name, PASSWORD)[0] == "OK"
        assert tls.append("INBOX", None, None, MESSAGE)[0] == "OK"
        assert tls.create("Archive")[0] == "OK"
        assert tls.select("INBOX") == ("OK", [b"2"])
        typ, data = tls.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK" and data[0][1] == MESSAGE

        rows = [row for row in _who(setup) if row[0] == a.name]
        assert {row[1] for row in rows} == {"imap"} and {row[3] for row in rows} == {"127.0.0.1"}
        # Both sessions (plain and TLS) live in A's one worker.
        (pid,) = {int(row[2].strip("()")) for row in rows}
        assert pid != setup.daemon.proc.pid
        uids, gids, groups = _proc_ids(pid)
        assert uids == [a.uid] * 4 and gids == [a.gid] * 4
        assert 0 not in groups and a.gid in groups
        # The master itself stays root (it reads keys and the passdb).
        assert _proc_ids(setup.daemon.proc.pid)[0][0] == 0
    assert _assert_owned(a, a.maildir) >= 8
    assert len(list((a.maildir / "cur").iterdir())) + len(list((a.maildir / "new").iterdir())) == 2
    log = _wait_for(lambda: setup.daemon.log_text() if "Disconnected" in setup.daemon.log_text() else "",
                    "the log")
    assert f"imap-login: Info: Login: user=<{a.name}>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, " \
           f"mpid={pid}, TLS, session=<" in log


def test_pop3_plain_and_tls(setup: Setup) -> None:
    a = setup.users["a"]
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as imap:
        imap.login(a.name, PASSWORD)
        imap.append("INBOX", None, None, MESSAGE)
    plain = poplib.POP3("127.0.0.1", setup.ports["pop3"], timeout=20)
    plain.user(a.name)
    assert plain.pass_(PASSWORD) == b"+OK Logged in."
    assert plain.stat() == (1, len(MESSAGE))
    tls = poplib.POP3_SSL("127.0.0.1", setup.ports["pop3s"], context=_tls(setup), timeout=20)
    tls.user(a.name)
    tls.pass_(PASSWORD)
    assert tls.retr(1)[1] == MESSAGE.rstrip(b"\r\n").split(b"\r\n")
    assert {row[1] for row in _who(setup) if row[0] == a.name} == {"pop3"}
    assert plain.quit().startswith(b"+OK")
    assert tls.quit().startswith(b"+OK")
    _assert_owned(a, a.maildir)


def test_a_users_worker_cannot_open_another_users_maildir(setup: Setup) -> None:
    a, b = setup.users["a"], setup.users["b"]
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as imap:
        imap.login(b.name, PASSWORD)
        imap.append("INBOX", None, None, MESSAGE)
    _assert_owned(b, b.maildir)
    before = sorted(str(p) for p in b.maildir.rglob("*"))
    # `<a>-peek` has A's uid and B's Maildir as mail location: the store is
    # opened by A's worker, which the kernel keeps out of B's home.
    imap = imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20)
    try:
        imap.login(f"{a.name}-peek", PASSWORD)
        typ, _ = imap.select("INBOX")
        assert typ == "NO"
    except imaplib.IMAP4.abort as exc:  # the store could not be opened at all
        assert "Internal error" in str(exc)
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.abort, OSError):
            pass
    _wait_for(lambda: "Permission denied" in setup.daemon.log_text(), "the worker's error in the log")
    assert sorted(str(p) for p in b.maildir.rglob("*")) == before  # nothing of B's touched
    _assert_owned(b, b.maildir)


def test_uid_under_first_valid_uid_is_refused(setup: Setup) -> None:
    # Dovecot 2.3.19: the login succeeds, the mail process refuses the user.
    with socket.create_connection(("127.0.0.1", setup.ports["imap"]), timeout=20) as raw:
        reader = raw.makefile("rb")
        assert reader.readline().startswith(b"* OK ")
        raw.sendall(f"a LOGIN lowuid {PASSWORD}\r\n".encode())
        assert reader.readline() == b"a OK Logged in, but initialization failed.\r\n"
        assert reader.readline() == (b"* BYE Internal error occurred. "
                                     b"Refer to server log for more information.\r\n")
        assert reader.read() == b""
    with socket.create_connection(("127.0.0.1", setup.ports["pop3"]), timeout=20) as raw:
        reader = raw.makefile("rb")
        assert reader.readline().startswith(b"+OK ")
        raw.sendall(f"USER lowuid\r\nPASS {PASSWORD}\r\n".encode())
        assert reader.readline() == b"+OK\r\n"
        assert reader.readline() == (b"-ERR [SYS/TEMP] Internal error occurred. "
                                     b"Refer to server log for more information.\r\n")
    assert "Mail access for users with UID 1 not permitted (see first_valid_uid in config file, " \
           "uid from userdb lookup)." in setup.daemon.log_text()
    assert not (setup.base / "lowuid").exists()
    assert all(_proc_ids(int(pid))[0][0] != 1 for pid in os.listdir("/proc") if pid.isdigit()
               and Path(f"/proc/{pid}/cmdline").exists() and
               b"privsep.worker" in Path(f"/proc/{pid}/cmdline").read_bytes())


def _lmtp(setup: Setup, recipients: list[str]) -> list[bytes]:
    """One LMTP transaction; the per-recipient replies to DATA (RFC 2033 4.2)."""
    with socket.create_connection(("127.0.0.1", setup.ports["lmtp"]), timeout=20) as raw:
        reader = raw.makefile("rb")

        def reply() -> bytes:
            line = reader.readline()
            while line[3:4] == b"-":
                line = reader.readline()
            return line

        assert reply().startswith(b"220")
        raw.sendall(b"LHLO test\r\n")
        assert reply().startswith(b"250")
        raw.sendall(b"MAIL FROM:<sender@example.org>\r\n")
        assert reply().startswith(b"250")
        accepted = 0
        for rcpt in recipients:
            raw.sendall(f"RCPT TO:<{rcpt}>\r\n".encode())
            accepted += reply().startswith(b"250")
        raw.sendall(b"DATA\r\n")
        assert reply().startswith(b"354")
        raw.sendall(MESSAGE + b".\r\n")
        replies = [reply() for _ in range(accepted)]
        raw.sendall(b"QUIT\r\n")
        return replies


def test_lmtp_delivery_as_root_leaves_files_owned_by_the_user(setup: Setup) -> None:
    a, b = setup.users["a"], setup.users["b"]
    replies = _lmtp(setup, [a.name, b.name])
    assert [r[:3] for r in replies] == [b"250", b"250"], replies
    for user in (a, b):
        new = list((user.maildir / "new").iterdir())
        assert len(new) == 1
        assert new[0].read_bytes().endswith(b"\n\nhello\n")
        _assert_owned(user, user.maildir)


def test_idle_sees_a_delivery_made_by_another_process(setup: Setup) -> None:
    a = setup.users["a"]
    raw = socket.create_connection(("127.0.0.1", setup.ports["imap"]), timeout=20)
    reader = raw.makefile("rb")
    reader.readline()
    raw.sendall(f"a LOGIN {a.name} {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
    while not reader.readline().startswith(b"+ idling"):
        pass
    assert _lmtp(setup, [a.name])[0].startswith(b"250")
    assert reader.readline() == b"* 1 EXISTS\r\n"
    raw.sendall(b"DONE\r\n")
    raw.close()


def test_kick_reaches_the_worker(setup: Setup) -> None:
    a = setup.users["a"]
    _raw, reader = _logged_in(setup, a)
    done = setup.adm("kick", a.name)
    assert (done.returncode, done.stdout) == (0, f"{a.name} kicked connections from the following users:\n\n")
    assert reader.readline() == b"* BYE Server shutting down.\r\n"
    assert reader.readline() == b""
    _wait_for(lambda: not [r for r in _who(setup) if r[0] == a.name], "the session to leave who")


def test_sighup_keeps_sessions_and_new_logins_work(setup: Setup) -> None:
    a = setup.users["a"]
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as old, \
            imaplib.IMAP4_SSL("127.0.0.1", setup.ports["imaps"], ssl_context=_tls(setup), timeout=20) as old_tls:
        old.login(a.name, PASSWORD)
        old_tls.login(a.name, PASSWORD)
        setup.daemon.signal(signal.SIGHUP)
        setup.daemon.wait_notify("RELOADING=1")
        setup.daemon.wait_notify("READY=1")
        assert old.noop()[0] == "OK"
        assert old_tls.append("INBOX", None, None, MESSAGE)[0] == "OK"
        with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as new:
            new.login(a.name, PASSWORD)
            assert new.select("INBOX") == ("OK", [b"1"])
        assert old.select("INBOX") == ("OK", [b"1"])
    _assert_owned(a, a.maildir)


def test_sigterm_says_goodbye_from_the_workers(setup: Setup) -> None:
    a, b = setup.users["a"], setup.users["b"]
    _plain, plain_reader = _logged_in(setup, a)
    _tls_sock, tls_reader = _logged_in(setup, b, "imaps")
    workers = {int(row[2].strip("()")) for row in _who(setup)}
    assert len(workers) == 2
    assert setup.daemon.stop() == 0
    assert plain_reader.readline() == b"* BYE Server shutting down.\r\n"
    assert tls_reader.readline() == b"* BYE Server shutting down.\r\n"
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()
    log = setup.daemon.log_text()
    assert log.count("Info: Disconnected: Server shutting down. in=") == 2


def test_a_dying_worker_does_not_take_the_master_down(setup: Setup) -> None:
    a = setup.users["a"]
    raw, reader = _logged_in(setup, a)
    (pid,) = {int(row[2].strip("()")) for row in _who(setup)}
    os.kill(pid, signal.SIGKILL)
    assert reader.readline() == b""  # the session died with its process
    raw.close()
    _wait_for(lambda: f"child {pid} killed with signal 9" in setup.daemon.log_text(),
              "the master to log the death")
    _wait_for(lambda: not _who(setup), "who to forget the dead worker's sessions")
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as again:
        assert again.login(a.name, PASSWORD)[0] == "OK"
    assert setup.daemon.proc.poll() is None


def test_managesieve_scripts_are_written_as_the_user(setup: Setup) -> None:
    import base64

    a = setup.users["a"]
    script = b'require "fileinto";\r\nfileinto "Archive";\r\n'
    with socket.create_connection(("127.0.0.1", setup.ports["sieve"]), timeout=20) as raw:
        reader = raw.makefile("rb")

        def until_ok() -> bytes:
            while True:
                line = reader.readline()
                if not line or line.startswith((b"OK", b"NO", b"BYE")):
                    return line

        assert until_ok().startswith(b"OK")
        token = base64.b64encode(f"\0{a.name}\0{PASSWORD}".encode()).decode()
        raw.sendall(f'AUTHENTICATE "PLAIN" "{token}"\r\n'.encode())
        assert until_ok().startswith(b"OK")
        raw.sendall(b'PUTSCRIPT "main" {%d+}\r\n' % len(script) + script + b"\r\n")
        assert until_ok().startswith(b"OK")
        raw.sendall(b'SETACTIVE "main"\r\nLOGOUT\r\n')
        assert until_ok().startswith(b"OK")
    stored = a.home / "sieve" / "main.sieve"
    assert stored.read_bytes().replace(b"\r\n", b"\n") == script.replace(b"\r\n", b"\n")
    for path in (a.home / "sieve", stored, a.home / ".dovecot.sieve"):
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (a.uid, a.gid), path


def test_lda_run_as_root_delivers_as_the_user(setup: Setup) -> None:
    import subprocess
    import sys

    a = setup.users["a"]
    done = subprocess.run([sys.executable, "-m", "maa_server.cli.lda", "-c", str(setup.daemon.config),
                           "-d", a.name], input=MESSAGE, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    (saved,) = list((a.maildir / "new").iterdir())
    assert saved.read_bytes().endswith(b"\n\nhello\n")
    _assert_owned(a, a.maildir)


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def test_pre_login_work_runs_as_the_login_user(setup: Setup) -> None:
    import pwd

    login_user = pwd.getpwnam("dovenull")
    a = setup.users["a"]
    # AUTHENTICATE LOGIN: a multi-step SASL exchange, carried to the master.
    raw = socket.create_connection(("127.0.0.1", setup.ports["imap"]), timeout=20)
    reader = raw.makefile("rb")
    assert reader.readline().startswith(b"* OK")
    logins = [pid for pid in _children(setup.daemon.proc.pid)
              if b"privsep.login" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(logins) == 1
    uids, gids, groups = _proc_ids(logins[0])
    assert uids == [login_user.pw_uid] * 4 and gids == [login_user.pw_gid] * 4 and 0 not in groups
    import base64

    raw.sendall(b"a AUTHENTICATE LOGIN\r\n")
    assert reader.readline().startswith(b"+ ")
    raw.sendall(base64.b64encode(a.name.encode()) + b"\r\n")
    assert reader.readline().startswith(b"+ ")
    raw.sendall(base64.b64encode(PASSWORD.encode()) + b"\r\n")
    assert reader.readline().startswith(b"a OK [CAPABILITY ")
    raw.sendall(b"b SELECT INBOX\r\n")
    line = reader.readline()
    while not line.startswith(b"b "):
        line = reader.readline()
    assert line.startswith(b"b OK")
    raw.close()


def test_a_wrong_password_is_refused_through_the_master(setup: Setup) -> None:
    a = setup.users["a"]
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as imap:
        try:
            imap.login(a.name, "wrong")
            raise AssertionError("logged in with a wrong password")
        except imaplib.IMAP4.error as exc:
            assert "[AUTHENTICATIONFAILED] Authentication failed." in str(exc)


def test_a_dying_login_process_is_replaced(setup: Setup) -> None:
    (login,) = [pid for pid in _children(setup.daemon.proc.pid)
                if b"privsep.login" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(login, signal.SIGKILL)
    _wait_for(lambda: f"child {login} killed with signal 9" in setup.daemon.log_text(),
              "the master to log the death")
    a = setup.users["a"]
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as imap:
        assert imap.login(a.name, PASSWORD)[0] == "OK"
    assert setup.daemon.proc.poll() is None


def test_missing_default_login_user_is_fatal_as_in_dovecot(setup: Setup) -> None:
    import subprocess
    import sys

    setup.daemon.stop()
    text = setup.daemon.config.read_text() + "default_login_user = nosuchloginuserx\n"
    setup.daemon.config.write_text(text)
    done = subprocess.run([sys.executable, "-m", "maa_server.cli.server", "-F", "-c", str(setup.daemon.config)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "MAA_SERVER_SINGLE_PROCESS": "0"})
    assert done.returncode == 89
    assert (f"Fatal: Error in configuration file {setup.daemon.config}: "
            "default_login_user doesn't exist: nosuchloginuserx") in done.stderr


def test_a_user_without_uid_gets_dovecots_answer(setup: Setup) -> None:
    """Observed from Dovecot 2.3.19: the login succeeds, the mail process
    cannot become the user."""
    with socket.create_connection(("127.0.0.1", setup.ports["imap"]), timeout=20) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(f"a LOGIN nouid {PASSWORD}\r\n".encode())
        assert reader.readline() == b"a OK Logged in, but initialization failed.\r\n"
        assert reader.readline() == b"* BYE Internal error occurred. Refer to server log for more information.\r\n"
        assert reader.readline() == b""
    with socket.create_connection(("127.0.0.1", setup.ports["pop3"]), timeout=20) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(f"USER nouid\r\nPASS {PASSWORD}\r\n".encode())
        assert reader.readline() == b"+OK\r\n"
        assert reader.readline() == \
            b"-ERR [SYS/TEMP] Internal error occurred. Refer to server log for more information.\r\n"
    log = _wait_for(lambda: setup.daemon.log_text() if "pop3(nouid)" in setup.daemon.log_text() else "",
                    "the log lines")
    assert "imap-login: Info: Login: user=<nouid>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, secured" in log
    assert "imap(nouid): Error: Couldn't drop privileges: User is missing UID (see mail_uid setting)" in log
    assert "pop3(nouid): Error: Couldn't drop privileges: User is missing UID (see mail_uid setting)" in log
    assert not (setup.base / "nouid").exists()


def test_an_idle_worker_exits_and_the_next_login_starts_another(setup: Setup) -> None:
    a = setup.users["a"]
    config = setup.daemon.config
    config.write_text(config.read_text() + "service imap {\n  idle_kill = 1s\n}\n")
    setup.daemon.signal(signal.SIGHUP)
    setup.daemon.wait_notify("RELOADING=1")
    setup.daemon.wait_notify("READY=1")
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as imap:
        imap.login(a.name, PASSWORD)
        (pid,) = {int(row[2].strip("()")) for row in _who(setup)}
    _wait_for(lambda: not Path(f"/proc/{pid}").exists() or
              Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
              "the idle worker to exit")
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as imap:
        imap.login(a.name, PASSWORD)
        (again,) = {int(row[2].strip("()")) for row in _who(setup)}
    assert again != pid
    assert f"child {pid}" not in setup.daemon.log_text()  # a clean exit, nothing to report


def test_sighup_serves_a_renewed_certificate_to_new_connections(setup: Setup, ca: TestCA) -> None:
    from tests.integration.daemon.pki import peer_common_name

    a = setup.users["a"]
    old = imaplib.IMAP4_SSL("127.0.0.1", setup.ports["imaps"], ssl_context=_tls(setup), timeout=20)
    old.login(a.name, PASSWORD)
    assert peer_common_name(old.sock.getpeercert(binary_form=True)) == "localhost"
    ca.issue(setup.base, "server", ["127.0.0.1", "localhost"])  # certbot renews in place
    setup.daemon.signal(signal.SIGHUP)
    setup.daemon.wait_notify("RELOADING=1")
    setup.daemon.wait_notify("READY=1")
    with imaplib.IMAP4_SSL("127.0.0.1", setup.ports["imaps"], ssl_context=_tls(setup), timeout=20) as new:
        assert peer_common_name(new.sock.getpeercert(binary_form=True)) == "127.0.0.1"
        assert new.login(a.name, PASSWORD)[0] == "OK"
    assert old.noop()[0] == "OK"  # relayed by the old login process, untouched
    old.logout()


def test_mail_max_userip_connections_counts_every_process(setup: Setup) -> None:
    a = setup.users["a"]
    config = setup.daemon.config
    config.write_text(config.read_text() + "mail_max_userip_connections = 2\n")
    setup.daemon.signal(signal.SIGHUP)
    setup.daemon.wait_notify("RELOADING=1")
    setup.daemon.wait_notify("READY=1")
    first = imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20)
    second = imaplib.IMAP4_SSL("127.0.0.1", setup.ports["imaps"], ssl_context=_tls(setup), timeout=20)
    first.login(a.name, PASSWORD)
    second.login(a.name, PASSWORD)
    _wait_for(lambda: len(_who(setup)) == 2, "both sessions in who")
    time.sleep(0.2)  # the counts reach the login process asynchronously
    with socket.create_connection(("127.0.0.1", setup.ports["imap"]), timeout=20) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(f"a LOGIN {a.name} {PASSWORD}\r\n".encode())
        assert reader.readline() == (b"a NO [LIMIT] Maximum number of connections from user+IP exceeded "
                                     b"(mail_max_userip_connections=2)\r\n")
    first.logout()
    _wait_for(lambda: len(_who(setup)) == 1, "one session left")
    time.sleep(0.2)
    with imaplib.IMAP4("127.0.0.1", setup.ports["imap"], timeout=20) as third:
        assert third.login(a.name, PASSWORD)[0] == "OK"
    second.logout()
