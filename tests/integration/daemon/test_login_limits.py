"""Login services' limits as Dovecot 2.3.19 applies them (observed with
`process_limit = 2` on imap-login and pop3-login): the master warns, the
waiting pre-login clients hear `Connection queue full`, the new one is
served; logged-in sessions never count."""

from __future__ import annotations

import socket
from pathlib import Path

from maa_server.config import parse_config_text
from maa_server.daemon.limits import login_limit

from .conftest import PASSWORD, free_port, start_daemon, write_config
from .pki import TestCA


def test_limit_arithmetic() -> None:
    cfg = parse_config_text("default_process_limit = 7\n"
                            "service pop3-login {\n  service_count = 0\n  process_limit = 2\n}\n"
                            "service imap-login {\n  client_limit = 5\n}\n")
    imap = login_limit(cfg, "imap-login")
    pop3 = login_limit(cfg, "pop3-login")
    assert imap is not None and (imap.connections, imap.drops_all) == (7, True)
    assert pop3 is not None and (pop3.connections, pop3.drops_all) == (2 * 1000, False)
    assert login_limit(cfg, "lmtp") is None


def _greeted(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert sock.recv(4096)[:3] in (b"* O", b"+OK")
    return sock


def _rest(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        data += b"<still open>"
    sock.close()
    return data


def test_queue_full_drops_waiting_clients_as_dovecot(tmp_path: Path, ca: TestCA) -> None:
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    config = write_config(tmp_path, ca, ports)
    text = config.read_text()
    text = text.replace("service imap-login {\n", "service imap-login {\n  process_limit = 2\n")
    text = text.replace("service pop3-login {\n",
                        "service pop3-login {\n  service_count = 0\n  process_limit = 1\n  client_limit = 2\n")
    config.write_text(text)
    daemon = start_daemon(tmp_path, config, ports)
    try:
        # A logged-in session does not take a login slot.
        logged_in = _greeted(ports["imap"])
        logged_in.sendall(f"a LOGIN alice {PASSWORD}\r\n".encode())
        assert logged_in.recv(4096).startswith(b"a OK")
        first, second = _greeted(ports["imap"]), _greeted(ports["imap"])
        third = _greeted(ports["imap"])
        # service_count = 1: every waiting client goes, as in Dovecot.
        assert _rest(first) == b"* BYE Connection queue full\r\n"
        assert _rest(second) == b"* BYE Connection queue full\r\n"
        third.settimeout(0.5)
        assert _rest(third) == b"<still open>"
        logged_in.sendall(b"n NOOP\r\n")
        assert logged_in.recv(4096).startswith(b"n OK")
        logged_in.close()
        # service_count = 0: client_limit per process, only the oldest goes.
        pops = [_greeted(ports["pop3"]) for _ in range(3)]
        assert _rest(pops[0]) == b"-ERR Connection queue full\r\n"
        pops[1].settimeout(0.5)
        assert _rest(pops[1]) == b"<still open>"
        pops[2].close()
    finally:
        assert daemon.stop() == 0
        daemon.notify.close()
    log = daemon.log_text()
    assert "master: Warning: service(imap-login): process_limit (2) reached, client connections are being " \
           "dropped" in log
    assert "master: Warning: service(pop3-login): client_limit (2) reached, client connections are being " \
           "dropped" in log
    assert log.count("imap-login: Info: Disconnected: Connection queue full (no auth attempts in ") == 2
    assert log.count("pop3-login: Info: Disconnected: Connection queue full (no auth attempts in ") == 1
