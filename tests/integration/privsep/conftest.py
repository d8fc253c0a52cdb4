"""Privilege separation, tested as CI runs: as root, with temporary system
users made by the test (useradd) and the real daemon (`maa-server -F -c`)
on loopback ports. Everything lives under one 0755 directory in /tmp so
that the users can reach their homes (pytest's own tmp dirs are root-only);
users and files are removed at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.daemon.pki import TestCA, make_ca
from tests.support.config import passwd_file_databases
from tests.support.daemon import Daemon, login_services, start_daemon
from tests.support.net import free_port

PASSWORD = "privsep-pw"


@dataclass
class SystemUser:
    name: str
    uid: int
    gid: int
    home: Path

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"


@dataclass
class Setup:
    base: Path
    users: dict[str, SystemUser]
    ports: dict[str, int]
    daemon: Daemon
    ca_file: Path

    def adm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(os.sys.executable).parent / "maa-adm"), "-c", str(self.daemon.config),
                               *args], capture_output=True, text=True, timeout=30, check=False)


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("privilege separation needs root (CI runs as root)")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("useradd/userdel not available")


def _add_user(name: str, home: Path) -> SystemUser:
    subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--home-dir", str(home),
                    "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    import pwd

    entry = pwd.getpwnam(name)
    home.mkdir(mode=0o700)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    return SystemUser(name, entry.pw_uid, entry.pw_gid, home)


def _del_user(name: str) -> None:
    subprocess.run(["userdel", name], check=False, capture_output=True)
    subprocess.run(["groupdel", name], check=False, capture_output=True)


def write_config(base: Path, users: dict[str, SystemUser], ports: dict[str, int]) -> Path:
    lines = []
    for user in users.values():
        lines.append(f"{user.name}:{{PLAIN}}{PASSWORD}:{user.uid}:{user.gid}::{user.home}::")
    a, b = users["a"], users["b"]
    # A second login name with A's uid whose mail location is B's Maildir:
    # the worker (running as A) must fail to open it.
    lines.append(f"{a.name}-peek:{{PLAIN}}{PASSWORD}:{a.uid}:{a.gid}::{a.home}::"
                 f"userdb_mail=maildir:{b.maildir}")
    # No uid from the userdb and no mail_uid: nobody to run as.
    lines.append(f"nouid:{{PLAIN}}{PASSWORD}::::{base}/nouid::")
    # uid 1 (daemon) is under first_valid_uid (500).
    lines.append(f"lowuid:{{PLAIN}}{PASSWORD}:1:1::{base}/lowuid::")
    passwd = base / "users"
    passwd.write_text("\n".join(lines) + "\n")
    os.chmod(passwd, 0o600)  # only the master (root) reads it
    config = base / "maa.conf"
    config.write_text(f"""\
protocols = imap pop3 lmtp sieve
listen = 127.0.0.1
base_dir = {base}/run
log_path = {base}/maa.log
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
ssl = yes
ssl_cert = <{base}/server.pem
ssl_key = <{base}/server.key
{passwd_file_databases(passwd)}{login_services(ports)}service managesieve-login {{
  inet_listener sieve {{
    port = {ports['sieve']}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {ports['lmtp']}
  }}
}}
""")
    return config


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def setup(ca: TestCA) -> Iterator[Setup]:
    _need_root()
    tag = secrets.token_hex(3)
    base = Path(f"/tmp/maa-privsep-{tag}")
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)
    (base / "run").mkdir()
    made: list[str] = []
    daemon: Daemon | None = None
    try:
        users = {}
        for key in ("a", "b"):
            name = f"maaps{tag}{key}"
            users[key] = _add_user(name, base / name)
            made.append(name)
        ca.issue(base, "server", ["localhost", "127.0.0.1"])
        ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s", "lmtp", "sieve")}
        config = write_config(base, users, ports)
        daemon = start_daemon(base, config, ports, env={"MAA_SERVER_SINGLE_PROCESS": "0"})
        yield Setup(base, users, ports, daemon, ca.pem_path)
    finally:
        if daemon is not None:
            daemon.stop()
            daemon.notify.close()
        for name in made:
            _del_user(name)
        if not os.environ.get("KEEP_PRIVSEP"):
            shutil.rmtree(base, ignore_errors=True)
