"""Loopback ports for servers the tests start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (nothing reserves
    it: a server that fails to bind it should be retried on another)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the server still sends until it closes; then close ours."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    sock.close()
    return data
