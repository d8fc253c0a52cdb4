"""The real Dovecot 2.3 (Debian packages) on loopback ports, as the oracle
of the interop tests: IMAP, POP3 and LMTP over TCP, passwd-file users."""

from __future__ import annotations

import os
from pathlib import Path

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

__all__ = ["DOVECOT", "NOBODY", "RealDovecot", "chown_tree"]


class RealDovecot:
    def __init__(self, root: Path, users_file: Path, uidl_format: str = "%08Xu%08Xv",
                 extra_config: str = "") -> None:
        self.root = root
        self.pop3_port, self.imap_port, self.lmtp_port = free_port(), free_port(), free_port()
        self.config = root / "dovecot.conf"
        self.config.write_text(f"""
base_dir = {root}/dovecot-run
instance_name = maa-interop-{os.getpid()}-{self.pop3_port}
protocols = imap pop3 lmtp
listen = 127.0.0.1
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
{extra_config}
mail_location = maildir:~/Maildir
first_valid_uid = 1
pop3_uidl_format = {uidl_format}
{passwd_file_databases(users_file)}service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
{STATS_SERVICE}""")
        self.process = start_dovecot(self.config, self.pop3_port)

    def stop(self) -> None:
        stop_dovecot(self.process)
