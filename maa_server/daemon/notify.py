"""sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.

systemd's protocol is newline-separated KEY=VALUE assignments in a single
datagram on an AF_UNIX socket; a leading `@` names an abstract socket.
"""

from __future__ import annotations

import os
import socket


def sd_notify(*assignments: str) -> bool:
    """Send e.g. sd_notify("READY=1", "STATUS=..."); False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or not assignments:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    payload = "\n".join(assignments).encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(payload)
    except OSError:
        return False
    return True
