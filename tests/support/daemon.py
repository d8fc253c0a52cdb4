"""Run `maa-server -F -c <config>` as a subprocess on loopback ports.

Readiness is the daemon's own sd_notify READY=1 on a datagram socket the
caller's Daemon holds (NOTIFY_SOCKET), so the tests never guess with sleeps."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 30.0


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    notify: socket.socket
    home: Path
    ports: dict[str, int]
    config: Path
    messages: list[str] = field(default_factory=list)

    def wait_notify(self, wanted: str, timeout: float = START_TIMEOUT) -> list[str]:
        """Read datagrams until one contains `wanted` (e.g. READY=1)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = self.proc.poll() is not None
            self.notify.settimeout(0 if exited else 0.2)
            try:
                data = self.notify.recv(4096).decode()
            except (TimeoutError, BlockingIOError):
                data = ""
            if data:
                self.messages.append(data)
                if wanted in data.split("\n"):
                    return data.split("\n")
                continue
            if exited:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"maa-server exited {self.proc.returncode}: {out}{err}")
        raise AssertionError(f"no {wanted} from maa-server; got {self.messages}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def log_text(self) -> str:
        path = self.home / "maa.log"
        return path.read_text() if path.exists() else ""


def login_services(ports: dict[str, int]) -> str:
    """`service imap-login` and `service pop3-login`, each with a plain and
    an SSL listener on the ports named imap, imaps, pop3 and pop3s."""
    return "".join(f"""\
service {protocol}-login {{
  inet_listener {protocol} {{
    port = {ports[protocol]}
  }}
  inet_listener {protocol}s {{
    port = {ports[protocol + 's']}
    ssl = yes
  }}
}}
""" for protocol in ("imap", "pop3"))


def server_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "maa_server.cli.server", *args]


def start_daemon(home: Path, config: Path, ports: dict[str, int],
                 env: dict[str, str] | None = None) -> Daemon:
    notify_path = home / "notify.sock"
    if notify_path.exists():
        notify_path.unlink()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    # One process even as root (CI): these tests' users live under the
    # root-only pytest tmp dirs. tests/integration/privsep runs separated.
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "MAA_SERVER_SINGLE_PROCESS": "1", **(env or {})}
    proc = subprocess.Popen(server_command("-F", "-c", str(config)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    daemon = Daemon(proc, notify, home, ports, config)
    try:
        daemon.wait_notify("READY=1")
    except BaseException:
        daemon.stop()
        notify.close()
        raise
    return daemon
