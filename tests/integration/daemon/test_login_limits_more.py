"""The other pre-login rules of issue 8 item 6, end to end: the pre-auth
idle timeout of POP3 (Dovecot's text and log line) and
login_trusted_networks (a trusted client counts as secured: plaintext
logins allowed with disable_plaintext_auth = yes, `secured` in the log)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from maa_server.protocols.pop3 import session as pop3_session
from tests.integration.pop3.maa_pop3_harness import MaaStack

from .conftest import PASSWORD, free_port, start_daemon, write_config
from .pki import TestCA


def test_pop3_pre_auth_inactivity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="maa")
    monkeypatch.setattr(pop3_session, "LOGIN_TIMEOUT", 0.3)
    stack = MaaStack(tmp_path).start()
    try:
        with socket.create_connection(("127.0.0.1", stack.pop3_port), timeout=10) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"+OK")
            assert reader.readline() == b"-ERR Disconnected for inactivity.\r\n"
            assert reader.readline() == b""
    finally:
        stack.stop()
    assert any(r.getMessage().startswith("Disconnected: Inactivity (no auth attempts in 0 secs): user=<>, "
                                         "rip=127.0.0.1") for r in caplog.records)


def _login_from(port: int, source: str, commands: list[bytes]) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0), timeout=10) as sock:
        reader = sock.makefile("rb")
        replies = [reader.readline()]
        for command in commands:
            sock.sendall(command + b"\r\n")
            replies.append(reader.readline())
            while replies[-1].startswith(b"* "):  # IMAP untagged lines before the tagged one
                replies[-1:] = [replies[-1], reader.readline()]
        return replies


@pytest.mark.parametrize("trusted", [False, True])
def test_login_trusted_networks(tmp_path: Path, ca: TestCA, trusted: bool) -> None:
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    config = write_config(tmp_path, ca, ports, extra=(
        "auth_failure_delay = 0\n" + ("login_trusted_networks = 127.0.0.2/32 ::1\n" if trusted else "")))
    config.write_text(config.read_text().replace("disable_plaintext_auth = no\n", "disable_plaintext_auth = yes\n"))
    daemon = start_daemon(tmp_path, config, ports)
    try:
        imap = _login_from(ports["imap"], "127.0.0.2", [f"a LOGIN alice {PASSWORD}".encode(), b"b LOGOUT"])
        pop3 = _login_from(ports["pop3"], "127.0.0.2", [b"USER alice", f"PASS {PASSWORD}".encode(), b"QUIT"])
    finally:
        assert daemon.stop() == 0
        daemon.notify.close()
    log = daemon.log_text()
    if trusted:
        assert imap[1].startswith(b"a OK ") and pop3[2] == b"+OK Logged in.\r\n"
        assert "imap-login: Info: Login: user=<alice>, method=PLAIN, rip=127.0.0.2, lip=127.0.0.1, " in log
        assert log.count(", secured, session=<") == 2
    else:
        # Dovecot 2.3's replies to plaintext on an insecure connection (spec 7.2).
        assert imap[1].startswith(b"* BAD [ALERT] Plaintext authentication not allowed without SSL/TLS")
        assert imap[2] == (b"a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
                           b"(SSL/TLS) connections.\r\n")
        assert pop3[1].startswith(b"-ERR [AUTH] Plaintext authentication disallowed on non-secure")
        assert "Login: " not in log and ", secured, " not in log
