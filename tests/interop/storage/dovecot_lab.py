"""A private, real Dovecot 2.3 on loopback over a temporary Maildir (interop oracle).

Runs `dovecot -F -c <tmp>/dovecot.conf` with its own base_dir, IMAP on a free
port, one passwd-file user `bob` (uid nobody, password `secret`) whose home
is `<tmp>/home`. Needs root (Dovecot drops to the mail user).
"""

from __future__ import annotations

import imaplib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

DOVECOT = "/usr/sbin/dovecot"
NOBODY = 65534
PASSWORD = "secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chown_tree(path: Path) -> None:
    """Give files we wrote (as root) to the mail user Dovecot runs as."""
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, NOBODY, NOBODY)
        for name in files:
            os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)


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
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0600
  }}
}}
""")
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read() if self.process.stderr else b""
                    raise RuntimeError(f"dovecot did not start: {err!r}") from None
                time.sleep(0.05)

    def imap(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        client.login("bob", PASSWORD)
        return client

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
