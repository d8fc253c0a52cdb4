"""The daemon serves plain and implicit-TLS listeners from the config, picks
certificates by SNI, and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import ssl

from tests.support.net import read_to_eof

from .conftest import Daemon
from .pki import TestCA, peer_common_name


def tls_client(ca: TestCA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.pem_path))
    return ctx


def read_line(sock: socket.socket | ssl.SSLSocket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def test_plain_imap_and_pop3_greet(daemon: Daemon) -> None:
    with socket.create_connection(("127.0.0.1", daemon.ports["imap"]), timeout=10) as s:
        assert read_line(s).startswith(b"* OK")
    with socket.create_connection(("127.0.0.1", daemon.ports["pop3"]), timeout=10) as s:
        assert read_line(s).startswith(b"+OK")


def test_implicit_tls_verifies_against_the_ca(daemon: Daemon, ca: TestCA) -> None:
    ctx = tls_client(ca)
    for port, greeting in ((daemon.ports["imaps"], b"* OK"), (daemon.ports["pop3s"], b"+OK")):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                assert peer_common_name(s.getpeercert(binary_form=True)) == "localhost"
                assert read_line(s).startswith(greeting)


def test_sni_picks_the_local_name_certificate(daemon: Daemon, ca: TestCA) -> None:
    ctx = tls_client(ca)
    with socket.create_connection(("127.0.0.1", daemon.ports["imaps"]), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="mail.example.test") as s:
            assert peer_common_name(s.getpeercert(binary_form=True)) == "mail.example.test"
            assert read_line(s).startswith(b"* OK")
    # An unknown name gets the default certificate.
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", daemon.ports["imaps"]), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="MAIL.example.test") as s:  # names are case-blind
            assert peer_common_name(s.getpeercert(binary_form=True)) == "mail.example.test"
    with socket.create_connection(("127.0.0.1", daemon.ports["imaps"]), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="other.example.test") as s:
            assert peer_common_name(s.getpeercert(binary_form=True)) == "localhost"


def test_sigterm_says_bye_and_exits_zero(daemon: Daemon) -> None:
    """A pre-auth IMAP connection hears Dovecot's login-process goodbye."""
    sock = socket.create_connection(("127.0.0.1", daemon.ports["imap"]), timeout=10)
    assert read_line(sock).startswith(b"* OK")
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(20) == 0
    assert read_to_eof(sock) == b"* BYE Shutting down\r\n"
    assert any("STOPPING=1" in m for m in daemon.messages) or "STOPPING=1" in "\n".join(
        daemon.wait_notify("STOPPING=1", timeout=5))


def test_version() -> None:
    import subprocess

    from .conftest import server_command

    out = subprocess.run(server_command("--version"), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert out.stdout.startswith("maa-server ")


def test_without_foreground_it_daemonizes(tmp_path, ca: TestCA) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import time

    from .conftest import free_port, server_command, write_config

    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    config = write_config(tmp_path, ca, ports)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(30)
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify.sock"))
    started = subprocess.run(server_command("-c", str(config)), env=env, capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
    assert started.returncode == 0, started.stderr
    pid = 0
    try:
        while "READY=1" not in notify.recv(4096).decode().split("\n"):
            pass
        pid = int((tmp_path / "run" / "master.pid").read_text())
        assert pid != os.getpid()
        with socket.create_connection(("127.0.0.1", ports["imap"]), timeout=10) as s:
            assert read_line(s).startswith(b"* OK")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while (tmp_path / "run" / "master.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (tmp_path / "run" / "master.pid").exists()
        pid = 0
    finally:
        notify.close()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_sigterm_with_a_logged_in_imap_session(daemon: Daemon) -> None:
    import imaplib

    from .conftest import PASSWORD

    imap = imaplib.IMAP4("127.0.0.1", daemon.ports["imap"], timeout=10)
    imap.login("alice", PASSWORD)
    imap.select("INBOX")
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(20) == 0
    rest = b""
    while chunk := imap.sock.recv(4096):
        rest += chunk
    imap.sock.close()
    assert rest.endswith(b"* BYE Server shutting down.\r\n")


def test_protocol_filter_certificate(tmp_path, ca: TestCA) -> None:  # type: ignore[no-untyped-def]
    """`protocol pop3 { ssl_cert = ... }` serves POP3 its own certificate."""
    from .conftest import free_port, start_daemon, write_config

    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    write_config(tmp_path, ca, ports)  # makes the certificates
    config = write_config(tmp_path, ca, ports, extra=(
        f"protocol pop3 {{\n  ssl_cert = <{tmp_path}/sni.pem\n  ssl_key = <{tmp_path}/sni.key\n}}\n"))
    daemon = start_daemon(tmp_path, config, ports)
    try:
        ctx = tls_client(ca)
        ctx.check_hostname = False
        names = {}
        for port_name in ("imaps", "pop3s"):
            with socket.create_connection(("127.0.0.1", ports[port_name]), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    names[port_name] = peer_common_name(s.getpeercert(binary_form=True))
        assert names == {"imaps": "localhost", "pop3s": "mail.example.test"}
    finally:
        assert daemon.stop() == 0
        daemon.notify.close()


def test_sigterm_goodbyes_as_dovecot(daemon: Daemon) -> None:
    """Observed from Dovecot 2.3.19 on `doveadm stop`: logged-in and pre-auth
    connections hear different words."""
    import imaplib
    import poplib

    from .conftest import PASSWORD

    pop = poplib.POP3("127.0.0.1", daemon.ports["pop3"], timeout=10)
    pop.user("alice")
    pop.pass_(PASSWORD)
    pre_imap = socket.create_connection(("127.0.0.1", daemon.ports["imap"]), timeout=10)
    assert read_line(pre_imap).startswith(b"* OK")
    pre_pop = socket.create_connection(("127.0.0.1", daemon.ports["pop3"]), timeout=10)
    assert read_line(pre_pop).startswith(b"+OK")
    imap = imaplib.IMAP4("127.0.0.1", daemon.ports["imap"], timeout=10)
    imap.login("alice", PASSWORD)
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(20) == 0
    assert read_to_eof(imap.sock) == b"* BYE Server shutting down.\r\n"
    assert read_to_eof(pop.sock) == b"-ERR [SYS/TEMP] Server shutting down.\r\n"
    assert read_to_eof(pre_imap) == b"* BYE Shutting down\r\n"
    assert read_to_eof(pre_pop) == b"-ERR Shutting down\r\n"


def test_pop3_applies_the_sni_local_name_block(tmp_path, ca: TestCA) -> None:  # type: ignore[no-untyped-def]
    """POP3 sees the SNI name as IMAP does: the local_name block's
    certificate, greeting (login) and pop3_logout_format (mail session)."""
    from .conftest import PASSWORD, free_port, start_daemon, write_config

    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    config = write_config(tmp_path, ca, ports)
    config.write_text(config.read_text().replace(
        "local_name mail.example.test {\n",
        "local_name mail.example.test {\n  login_greeting = SNI pop3 ready\n  pop3_logout_format = sni-format\n"))
    daemon = start_daemon(tmp_path, config, ports)
    try:
        ctx = tls_client(ca)
        seen = {}
        for name in ("mail.example.test", "localhost"):
            with socket.create_connection(("127.0.0.1", ports["pop3s"]), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname=name) as s:
                    greeting = read_line(s)
                    for command in ("USER alice", f"PASS {PASSWORD}", "QUIT"):
                        s.sendall(command.encode() + b"\r\n")
                        assert read_line(s).startswith(b"+OK")
                    seen[name] = (peer_common_name(s.getpeercert(binary_form=True)), greeting)
    finally:
        assert daemon.stop() == 0
        daemon.notify.close()
    assert seen["mail.example.test"] == ("mail.example.test", b"+OK SNI pop3 ready\r\n")
    assert seen["localhost"][0] == "localhost" and b"SNI" not in seen["localhost"][1]
    log = daemon.log_text()
    assert log.count("Info: Disconnected: Logged out sni-format\n") == 1
    assert log.count("Info: Disconnected: Logged out top=0/0, retr=0/0, del=0/0, size=0\n") == 1


def test_shutdown_clients_no_is_a_warning(tmp_path, ca: TestCA) -> None:  # type: ignore[no-untyped-def]
    from .conftest import free_port, start_daemon, write_config

    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    daemon = start_daemon(tmp_path, write_config(tmp_path, ca, ports, extra="shutdown_clients = no\n"), ports)
    assert daemon.stop() == 0
    daemon.notify.close()
    assert ("master: Warning: shutdown_clients = no is not supported: sessions end when maa-server stops"
            in daemon.log_text())
