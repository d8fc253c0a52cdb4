"""A private, real Dovecot 2.3 on loopback over a temporary Maildir (interop oracle).

Runs `dovecot -F -c <tmp>/dovecot.conf` with its own base_dir, IMAP on a free
port, one passwd-file user `bob` (uid nobody, password `secret`) whose home
is `<tmp>/home`. Needs root (Dovecot drops to the mail user).
"""

from __future__ import annotations

import imaplib
import os
from pathlib import Path
from typing import Self

from tests.support.config import passwd_file_databases
from tests.support.dovecot import (
    DOVECOT,
    NOBODY,
    STATS_SERVICE,
    chown_tree,
    start_dovecot,
    stop_dovecot,
)
from tests.support.net import free_port

__all__ = ["DOVECOT", "NOBODY", "PASSWORD", "RealDovecot", "chown_tree"]

PASSWORD = "secret"


class RealDovecot:
    def __init__(self, root: Path, mail_location: str = "maildir:~/Maildir:LAYOUT=fs",
                 extra: str = "") -> None:
        self.root = root
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        os.chown(self.home, NOBODY, NOBODY)
        self.port = free_port()
        users = root / "users"
        users.write_text(f"bob:{{PLAIN}}{PASSWORD}:{NOBODY}:{NOBODY}::{self.home}::\n")
        self.config = root / "dovecot.conf"
        self.config.write_text(f"""
base_dir = {root}/dovecot-run
instance_name = maa-storage-{os.getpid()}-{self.port}
protocols = imap
listen = 127.0.0.1
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = {mail_location}
first_valid_uid = 1
{extra}
{passwd_file_databases(users)}service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{STATS_SERVICE}""")
        self.process = start_dovecot(self.config, self.port)

    def imap(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        client.login("bob", PASSWORD)
        return client

    def stop(self) -> None:
        stop_dovecot(self.process)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
