"""`haproxy = yes` listeners: PROXY protocol v1/v2 from trusted peers only
(haproxy doc/proxy-protocol.txt examples; Dovecot master-service-haproxy.c)."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maa_server.daemon import proxy_protocol as pp

from .conftest import free_port, start_daemon, write_config
from .pki import TestCA


def v2(command: int, family: int, body: bytes) -> tuple[bytes, bytes]:
    return pp.V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)), body


def test_v1_examples() -> None:
    assert pp.parse_v1(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n") == \
        pp.ProxiedAddresses("192.168.0.1", 56324, "192.168.0.11", 443)
    assert pp.parse_v1(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n") == \
        pp.ProxiedAddresses("2001:db8::1", 1, "2001:db8::2", 2)
    assert pp.parse_v1(b"PROXY UNKNOWN\r\n") is None
    for bad in (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n",
                b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", b"PROXY TCP4 1.2.3.4\r\n"):
        with pytest.raises(pp.ProxyHeaderError):
            pp.parse_v1(bad)


def test_v2_examples() -> None:
    header, body = v2(1, 0x11, bytes([192, 0, 2, 7, 127, 0, 0, 1]) + struct.pack("!HH", 40000, 143))
    assert pp.parse_v2(header, body) == pp.ProxiedAddresses("192.0.2.7", 40000, "127.0.0.1", 143)
    six = socket.inet_pton(socket.AF_INET6, "2001:db8::7") + socket.inet_pton(socket.AF_INET6, "::1")
    header, body = v2(1, 0x21, six + struct.pack("!HH", 1, 2) + b"\x01\x00\x01x")  # with a TLV
    assert pp.parse_v2(header, body) == pp.ProxiedAddresses("2001:db8::7", 1, "::1", 2)
    assert pp.parse_v2(*v2(0, 0x00, b"")) is None  # LOCAL: a health check
    with pytest.raises(pp.ProxyHeaderError):
        pp.parse_v2(*v2(1, 0x11, b"\x00" * 4))


@given(st.binary(max_size=120))
def test_any_v1_line_parses_or_is_refused(data: bytes) -> None:
    try:
        pp.parse_v1(b"PROXY " + data)
    except pp.ProxyHeaderError:
        pass


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=60))
def test_any_v2_header_parses_or_is_refused(ver_cmd: int, family: int, body: bytes) -> None:
    header = pp.V2_SIGNATURE + bytes([ver_cmd, family]) + struct.pack("!H", len(body))
    try:
        pp.parse_v2(header, body)
    except pp.ProxyHeaderError:
        pass


def test_trusted_networks() -> None:
    assert pp.is_trusted("127.0.0.1", "10.0.0.0/8 127.0.0.1")
    assert pp.is_trusted("::ffff:10.1.2.3", "10.0.0.0/8")
    assert not pp.is_trusted("192.0.2.1", "10.0.0.0/8")
    assert not pp.is_trusted("127.0.0.1", "")


def start(tmp_path: Path, ca: TestCA, trusted: str) -> tuple[object, int]:
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    proxied = free_port()
    config = write_config(tmp_path, ca, ports, extra=(
        f"haproxy_trusted_networks = {trusted}\nauth_failure_delay = 0\n"
        f"service imap-login {{\n  inet_listener imap_haproxy {{\n    port = {proxied}\n"
        "    haproxy = yes\n  }\n}\n"))
    return start_daemon(tmp_path, config, ports), proxied


def test_proxied_client_address_is_logged(tmp_path: Path, ca: TestCA) -> None:
    daemon, port = start(tmp_path, ca, "127.0.0.1")
    try:
        for header in (b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\n",
                       b"".join(v2(1, 0x11, bytes([198, 51, 100, 9, 127, 0, 0, 1])
                                   + struct.pack("!HH", 40001, 143)))):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(header)
            stream = sock.makefile("rb")
            assert stream.readline().startswith(b"* OK")
            sock.sendall(b"a LOGIN alice wrong\r\n")  # a failed login is logged with rip=
            assert stream.readline().startswith(b"a NO")
            sock.sendall(b"b LOGOUT\r\n")
            while stream.readline():
                pass
            stream.close()
            sock.close()
    finally:
        daemon.stop()  # type: ignore[attr-defined]
        daemon.notify.close()  # type: ignore[attr-defined]
    log = daemon.log_text()  # type: ignore[attr-defined]
    assert "rip=192.0.2.7" in log and "rip=198.51.100.9" in log


def test_untrusted_peer_is_refused(tmp_path: Path, ca: TestCA) -> None:
    daemon, port = start(tmp_path, ca, "10.0.0.0/8")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\n")
            assert sock.recv(100) == b""
        deadline = time.monotonic() + 10
        while "Client not trusted" not in daemon.log_text() and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
    finally:
        daemon.stop()  # type: ignore[attr-defined]
        daemon.notify.close()  # type: ignore[attr-defined]
    assert "haproxy: Client not trusted (rip=127.0.0.1)" in daemon.log_text()  # type: ignore[attr-defined]
