"""Fixtures: `maa-server -F -c <tmp config>` as a subprocess on free
loopback ports (tests/support/daemon.py), with a complete config of one
passwd-file user, certificates from a test CA and every listener."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.support.config import passwd_file_databases
from tests.support.daemon import (
    START_TIMEOUT,
    Daemon,
    login_services,
    server_command,
    start_daemon,
)
from tests.support.net import free_port

from .pki import TestCA, make_ca

__all__ = ["PASSWORD", "START_TIMEOUT", "Daemon", "free_port", "server_command", "start_daemon",
           "write_config"]

PASSWORD = "s3cret-pw"


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
{passwd_file_databases(users, scheme="BLF-CRYPT")}{login_services(ports)}local_name mail.example.test {{
  ssl_cert = <{home}/sni.pem
  ssl_key = <{home}/sni.key
}}
{extra}
""")
    return config


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
