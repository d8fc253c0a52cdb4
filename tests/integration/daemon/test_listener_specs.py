"""Which sockets the daemon opens for a configuration (spec 1.8, 2.1)."""

from __future__ import annotations

import socket

import pytest

from maa_server.config import parse_config_text
from maa_server.daemon.listeners import ListenerSpec, bind, listener_specs, split_addresses


def test_listen_words() -> None:
    assert split_addresses("*, ::") == ["0.0.0.0", "::"]
    assert split_addresses("127.0.0.1 [::1],127.0.0.1") == ["127.0.0.1", "::1"]


def test_dovecot_default_listeners() -> None:
    cfg = parse_config_text("protocols = imap pop3 lmtp\nbase_dir = /run/x\n")
    labels = {(s.name, s.address, s.port, s.ssl) for s in listener_specs(cfg) if not s.path}
    assert labels == {
        ("imap", "0.0.0.0", 143, False), ("imap", "::", 143, False),
        ("imaps", "0.0.0.0", 993, True), ("imaps", "::", 993, True),
        ("pop3", "0.0.0.0", 110, False), ("pop3", "::", 110, False),
        ("pop3s", "0.0.0.0", 995, True), ("pop3s", "::", 995, True),
    }
    unix = [s for s in listener_specs(cfg) if s.path]
    assert [(s.protocol, s.path, s.mode) for s in unix] == [("lmtp", "/run/x/lmtp", 0o666)]


def test_port_zero_disables_and_address_overrides_listen() -> None:
    cfg = parse_config_text("""\
protocols = imap
listen = 127.0.0.1
service imap-login {
  inet_listener imap {
    address = 127.0.0.2
    port = 1143
  }
  inet_listener imaps {
    port = 0
  }
}
""")
    assert [(s.name, s.address, s.port) for s in listener_specs(cfg)] == [("imap", "127.0.0.2", 1143)]


def test_protocols_not_listed_are_not_served() -> None:
    cfg = parse_config_text("protocols = pop3\nlisten = 127.0.0.1\n")
    assert {s.protocol for s in listener_specs(cfg)} == {"pop3"}


def test_ipv6_loopback_binds_v6only() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sock = bind(ListenerSpec("imap", "imap-login", "imap", "::1", 0))
    except Exception as exc:  # a host without ::1
        pytest.skip(f"no IPv6 loopback: {exc}")
    assert sock is not None
    try:
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    finally:
        sock.close()
