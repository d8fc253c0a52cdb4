"""A userdb uid under first_valid_uid in single-process mode: USER/PASS
succeed at the login level and the mail session refuses the user, with
Dovecot 2.3.19's answer and log lines (lib-storage/mail-storage-service.c)."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

from tests.integration.pop3.maa_pop3_harness import PASSWORD, MaaStack, put_message

REFUSAL = ("Mail access for users with UID 100 not permitted "
           "(see first_valid_uid in config file, uid from userdb lookup).")
INTERNAL = b"-ERR [SYS/TEMP] Internal error occurred. Refer to server log for more information.\r\n"


def test_uid_under_first_valid_uid_gets_internal_error(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="maa")
    stack = MaaStack(tmp_path, users=("low",), uid=100, gid=100,
                     extra_config="auth_failure_delay = 0\nfirst_valid_uid = 500")
    put_message(stack.maildir("low"), "1700000000.M1P1.host", b"Subject: s\n\nbody\n")
    before = sorted(p.name for p in stack.maildir("low").rglob("*"))
    stack.start()
    try:
        with socket.create_connection(("127.0.0.1", stack.pop3_port), timeout=10) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"+OK ")
            sock.sendall(b"USER low\r\n")
            assert reader.readline() == b"+OK\r\n"
            sock.sendall(f"PASS {PASSWORD}\r\n".encode())
            assert reader.readline() == INTERNAL
            assert reader.read() == b""  # and the connection is closed
        deadline = time.monotonic() + 5
        while REFUSAL not in [r.getMessage() for r in caplog.records] and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stack.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert REFUSAL in lines
    assert any(m.startswith("Login: user=<low>, method=PLAIN, rip=127.0.0.1") for m in lines), lines
    # The mailbox was never opened: no dovecot-uidlist, nothing moved.
    assert sorted(p.name for p in stack.maildir("low").rglob("*")) == before


def test_uid_in_range_logs_in(tmp_path: Path) -> None:
    stack = MaaStack(tmp_path, users=("ok",), uid=600, gid=600,
                     extra_config="auth_failure_delay = 0\nfirst_valid_uid = 500")
    stack.start()
    try:
        with socket.create_connection(("127.0.0.1", stack.pop3_port), timeout=10) as sock:
            reader = sock.makefile("rb")
            reader.readline()
            sock.sendall(f"USER ok\r\nPASS {PASSWORD}\r\nQUIT\r\n".encode())
            assert reader.readline() == b"+OK\r\n"
            reply = reader.readline()
            assert reply == b"+OK Logged in.\r\n"
    finally:
        stack.stop()


def test_lmtp_delivery_to_uid_under_first_valid_uid_is_a_tempfail(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    # Dovecot 2.3.19: RCPT is accepted, the DATA reply for the recipient is
    # 451 4.3.0 and the log says "Failed to initialize user: Mail access ...".
    caplog.set_level(logging.INFO, logger="maa")
    stack = MaaStack(tmp_path, users=("low",), uid=100, gid=100,
                     extra_config="auth_failure_delay = 0\nfirst_valid_uid = 500").start()
    try:
        with socket.create_connection(("127.0.0.1", stack.lmtp_port), timeout=10) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"220 ")
            sock.sendall(b"LHLO test\r\n")
            while reader.readline()[3:4] == b"-":
                pass
            replies = []
            for line in (b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<low>\r\n", b"DATA\r\n",
                         b"Subject: s\r\n\r\nbody\r\n.\r\n"):
                sock.sendall(line)
                replies.append(reader.readline())
        assert replies == [b"250 2.1.0 OK\r\n", b"250 2.1.5 OK\r\n", b"354 OK\r\n",
                           b"451 4.3.0 <low> Temporary internal error\r\n"]
    finally:
        stack.stop()
    assert f"Failed to initialize user: {REFUSAL}" in [r.getMessage() for r in caplog.records]
    assert not list((stack.maildir("low") / "new").iterdir())
