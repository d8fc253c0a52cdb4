"""Run `maa-server -F -c <tmp config>` as a subprocess on free loopback ports.

Readiness is the daemon's own sd_notify READY=1 on a datagram socket the
fixture creates (NOTIFY_SOCKET), so the tests never guess with sleeps."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import pytest

from .pki import TestCA, make_ca

PASSWORD = "s3cret-pw"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def write_config(home: Path, ca: TestCA, ports: dict[str, int], extra: str = "") -> Path:
    """A complete config: passwd-file user alice, certificates from the CA,
    a local_name block for SNI, every port on 127.0.0.1."""
    (home / "run").mkdir(exist_ok=True)
    (home / "mail").mkdir(exist_ok=True)
    if not (home / "server.pem").exists():
        ca.issue(home, "server", ["localhost", "127.0.0.1"])
        ca.issue(home, "sni", ["mail.example.test"])
    users = home / "users"
    if not users.exists():
        hashed = "$2y$" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()[4:]
        # Root's uid is refused for mail (first_valid_uid), as by Dovecot.
        uid, gid = (os.getuid(), os.getgid()) if os.getuid() else (65534, 65534)
        users.write_text(f"alice:{{BLF-CRYPT}}{hashed}:{uid}:{gid}::{home}/mail/alice::\n")
    config = home / "maa.conf"
    config.write_text(f"""\
protocols = imap pop3
listen = 127.0.0.1
base_dir = {home}/run
log_path = {home}/maa.log
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
ssl = yes
ssl_cert = <{home}/server.pem
ssl_key = <{home}/server.key
passdb {{
  driver = passwd-file
  args = scheme=BLF-CRYPT {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  inet_listener imap {{
    port = {ports['imap']}
  }}
  inet_listener imaps {{
    port = {ports['imaps']}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {ports['pop3']}
  }}
  inet_listener pop3s {{
    port = {ports['pop3s']}
    ssl = yes
  }}
}}
local_name mail.example.test {{
  ssl_cert = <{home}/sni.pem
  ssl_key = <{home}/sni.key
}}
{extra}
""")
    return config


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


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def daemon(tmp_path: Path, ca: TestCA) -> Iterator[Daemon]:
    for attempt in range(3):
        ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
        config = write_config(tmp_path, ca, ports)
        try:
            d = start_daemon(tmp_path, config, ports)
            break
        except AssertionError as exc:
            # free_port() cannot reserve: another process may take the port
            # before the daemon binds it. Anything else is a real failure.
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
    yield d
    d.stop()
    d.notify.close()
