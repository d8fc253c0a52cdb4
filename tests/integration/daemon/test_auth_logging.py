"""Auth lines in the daemon's log (spec 6.2, 6.4): auth_verbose lines as
Dovecot writes them, auth_debug on, and no password in any form in any log
line, after right and wrong logins with every SASL mechanism over IMAP and
POP3 (issue 8 item 3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import imaplib
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.auth.test_imap_sasl import scram

from .conftest import free_port, start_daemon, write_config
from .pki import TestCA

SECRET = "Zq7-vault-Pw"
WRONG = "Xk4-guess-Pw"
MECHANISMS = "plain login cram-md5 scram-sha-1 scram-sha-256"


def _pop3(port: int, *commands: str) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        replies = [reader.readline()]
        for command in commands:
            sock.sendall(command.encode() + b"\r\n")
            replies.append(reader.readline())
        return replies


def _imap_result(port: int, method: str, *args: Any,
                 refused: tuple[type[Exception], ...] = (imaplib.IMAP4.error,)) -> str:
    """The tagged result of one login attempt (imaplib's `method`) on a
    new connection."""
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        return str(getattr(imap, method)(*args)[0])
    except refused:
        return "NO"
    finally:
        imap.logout()


def _replies(steps: list[bytes]) -> Callable[[bytes], bytes]:
    """An imaplib authobject answering each challenge with the next step."""
    queue = list(steps)
    return lambda _challenge: queue.pop(0)


def _imap_login_every_way(port: int, password: str) -> list[str]:
    """Each mechanism once with `password`; the tagged results."""
    results = [_imap_result(port, "login", "alice", password)]
    plain = base64.b64encode(f"\0alice\0{password}".encode()).decode()
    answers: dict[str, list[bytes]] = {
        "PLAIN": [f"\0alice\0{password}".encode()],
        "LOGIN": [b"alice", password.encode()],
    }
    for mech, steps in answers.items():
        results.append(_imap_result(port, "authenticate", mech, _replies(steps)))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # SASL-IR
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(f"i AUTHENTICATE PLAIN {plain}\r\ni LOGOUT\r\n".encode())
        results.append(next(line for line in reader if line.startswith(b"i ")).split()[1].decode())
    results.append(_imap_result(port, "login_cram_md5", "alice", password))
    for mech, algo in (("SCRAM-SHA-1", "sha1"), ("SCRAM-SHA-256", "sha256")):
        results.append(_imap_result(port, "authenticate", mech, scram("alice", password, algo),
                                    refused=(imaplib.IMAP4.error, AssertionError)))
    return results


def _forms(password: str) -> list[str]:
    """The password as a log could leak it: raw, base64 of SASL payloads,
    hex/base64 digests a debug line might print."""
    forms = [password, base64.b64encode(password.encode()).decode(),
             base64.b64encode(f"\0alice\0{password}".encode()).decode(),
             hashlib.sha1(password.encode()).hexdigest(), hashlib.md5(password.encode()).hexdigest()]
    forms.append(hmac.new(password.encode(), b"", "md5").hexdigest())
    return forms


def test_no_password_in_any_log_line_with_auth_debug(tmp_path: Path, ca: TestCA) -> None:
    (tmp_path / "users").write_text(f"alice:{{PLAIN}}{SECRET}:{_ids()}::{tmp_path}/mail/alice::\n")
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    config = write_config(tmp_path, ca, ports, extra=(
        f"auth_mechanisms = {MECHANISMS}\nauth_verbose = yes\nauth_debug = yes\nmail_debug = yes\n"
        "auth_failure_delay = 0\nlogin_trusted_networks = 127.0.0.0/8\n"))
    config.write_text(config.read_text().replace("args = scheme=BLF-CRYPT ", "args = "))
    daemon = start_daemon(tmp_path, config, ports)
    try:
        right = _imap_login_every_way(ports["imap"], SECRET)
        wrong = _imap_login_every_way(ports["imap"], WRONG)
        pop_right = _pop3(ports["pop3"], "USER alice", f"PASS {SECRET}", "QUIT")
        pop_wrong = _pop3(ports["pop3"], "USER alice", f"PASS {WRONG}", "QUIT")
        pop_sasl = _pop3(ports["pop3"], "AUTH PLAIN " + base64.b64encode(f"\0alice\0{WRONG}".encode()).decode(),
                         "QUIT")
    finally:
        assert daemon.stop() == 0
        daemon.notify.close()
    assert right == ["OK"] * 7 and wrong == ["NO"] * 7
    assert pop_right[2].startswith(b"+OK") and pop_wrong[2].startswith(b"-ERR")
    assert pop_sasl[1].startswith(b"-ERR")
    log = daemon.log_text()
    assert ": Debug: " in log, "auth_debug wrote nothing: the test would prove nothing"
    for password in (SECRET, WRONG):
        for form in _forms(password):
            assert form not in log, f"{form!r} (a form of {password!r}) is in the log"
    # auth_verbose, as Dovecot 2.3 writes it (spec 6.4): driver(user,rip,<session>).
    mismatch = re.findall(r"^\S+ \S+ \S+ auth: Info: passwd-file\(alice,127\.0\.0\.1,<[A-Za-z0-9+/]{16}>\): "
                          r"Password mismatch$", log, re.MULTILINE)
    assert len(mismatch) >= 4, log


def _ids() -> str:
    import os

    return f"{os.getuid()}:{os.getgid()}" if os.getuid() else "65534:65534"
