"""SIGHUP: new certificate for new connections, old sessions untouched,
a broken configuration rejected while the old one keeps serving; sd_notify
around it (READY=1, RELOADING=1, STATUS=)."""

from __future__ import annotations

import imaplib
import signal
import socket
import ssl

from .conftest import PASSWORD, Daemon
from .pki import TestCA, peer_common_name


def tls_connect(daemon: Daemon, ca: TestCA, port_name: str = "pop3s") -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(ca.pem_path))
    raw = socket.create_connection(("127.0.0.1", daemon.ports[port_name]), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_line(sock: ssl.SSLSocket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def read_capa(sock: ssl.SSLSocket) -> list[bytes]:
    sock.sendall(b"CAPA\r\n")
    lines = [read_line(sock)]
    assert lines[0].startswith(b"+OK"), lines
    while lines[-1] != b".\r\n":
        lines.append(read_line(sock))
    return lines


def test_ready_notification_has_status(daemon: Daemon) -> None:
    ready = next(m for m in daemon.messages if "READY=1" in m.split("\n"))
    assert any(line.startswith("STATUS=") for line in ready.split("\n"))


def test_sighup_swaps_certificate_for_new_connections(daemon: Daemon, ca: TestCA) -> None:
    old = tls_connect(daemon, ca)
    assert peer_common_name(old.getpeercert(binary_form=True)) == "localhost"
    assert read_line(old).startswith(b"+OK")
    imap = imaplib.IMAP4_SSL("127.0.0.1", daemon.ports["imaps"], timeout=10,
                             ssl_context=ssl.create_default_context(cafile=str(ca.pem_path)))
    imap.login("alice", PASSWORD)
    imap.select("INBOX")

    # certbot renews: same file names, new content.
    ca.issue(daemon.home, "server", ["renewed.localhost", "localhost", "127.0.0.1"])
    daemon.messages.clear()
    daemon.signal(signal.SIGHUP)
    daemon.wait_notify("READY=1")
    assert any("RELOADING=1" in m.split("\n") for m in daemon.messages)

    new = tls_connect(daemon, ca)
    assert peer_common_name(new.getpeercert(binary_form=True)) == "renewed.localhost"
    assert read_line(new).startswith(b"+OK")
    new.close()

    # The session opened before the reload goes on with its old certificate.
    assert peer_common_name(old.getpeercert(binary_form=True)) == "localhost"
    assert read_capa(old)[-1] == b".\r\n"
    old.close()
    assert peer_common_name(imap.sock.getpeercert(binary_form=True)) == "localhost"
    assert imap.noop()[0] == "OK"
    assert imap.logout()[0] == "BYE"
    assert "reloading configuration" in daemon.log_text()


def test_broken_config_on_reload_keeps_the_old_one(daemon: Daemon, ca: TestCA) -> None:
    good = daemon.config.read_text()
    daemon.config.write_text(good + "\nssl = maybe\n")
    daemon.messages.clear()
    daemon.signal(signal.SIGHUP)
    daemon.wait_notify("READY=1")
    assert daemon.proc.poll() is None
    assert "Reload failed" in daemon.log_text()
    conn = tls_connect(daemon, ca)
    assert read_line(conn).startswith(b"+OK")
    conn.close()
    daemon.config.write_text(good)


def test_reload_applies_listener_changes(daemon: Daemon, ca: TestCA) -> None:
    from .conftest import free_port, write_config

    old_port = daemon.ports["pop3"]
    daemon.ports["pop3"] = free_port()
    write_config(daemon.home, ca, daemon.ports)
    daemon.messages.clear()
    daemon.signal(signal.SIGHUP)
    daemon.wait_notify("READY=1")
    with socket.create_connection(("127.0.0.1", daemon.ports["pop3"]), timeout=10) as s:
        assert s.recv(100).startswith(b"+OK")
    try:
        socket.create_connection(("127.0.0.1", old_port), timeout=10).close()
        refused = False
    except ConnectionRefusedError:
        refused = True
    assert refused
    with socket.create_connection(("127.0.0.1", daemon.ports["imap"]), timeout=10) as s:
        assert s.recv(100).startswith(b"* OK")


def test_sigusr1_reopens_the_log_file(daemon: Daemon) -> None:
    """logrotate moves the file and sends SIGUSR1: later lines go to a new
    file at the old name. Dovecot writes nothing about the reopen itself
    (observed), so the test makes log lines with connections until one
    lands in the new file."""
    import time

    log = daemon.home / "maa.log"
    log.rename(daemon.home / "maa.log.1")  # what logrotate does
    daemon.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 20
    wanted = "pop3-login: Info: Disconnected: Connection closed (no auth attempts in "
    while not (log.exists() and wanted in log.read_text()) and time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", daemon.ports["pop3"]), timeout=10) as sock:
            assert sock.recv(4096).startswith(b"+OK")
        time.sleep(0.05)
    assert wanted in log.read_text()
    rotated = (daemon.home / "maa.log.1").read_text()
    assert "starting up" in rotated and "starting up" not in log.read_text()
    assert "SIGUSR1" not in rotated + log.read_text()
