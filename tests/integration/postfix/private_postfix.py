"""A private Postfix instance (Debian's `postfix` package) for the tests:
its own config directory, queue and data directories under /tmp, smtpd on
a loopback port of ours, and every local/virtual delivery handed to our LMTP
listener over loopback TCP, as a Dovecot site configures it
(`mailbox_transport` / `virtual_transport = lmtp:inet:HOST:PORT`).

Postfix needs root to start (master binds, then drops to `mail_owner`), the
`postfix` user and `postdrop` group the package creates, and directories the
`postfix` user can reach: so the instance lives in a 0755 directory under
/tmp, not in pytest's 0700 tmp_path.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
SENDMAIL = "/usr/sbin/sendmail"

# Only what the test needs; chroot off so the daemons need no copies of
# /etc files. postlog writes maillog_file (no syslog in containers/CI).
MASTER_CF = """\
{smtpd_address} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_missing_reason() -> str | None:
    """Why this machine cannot run the private instance (None: it can)."""
    if not os.path.exists(POSTFIX) or not os.path.exists(SENDMAIL):
        return "postfix is not installed (Debian package `postfix`)"
    if os.geteuid() != 0:
        return "starting postfix needs root"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no `postfix` user (the package creates it)"
    return None


class PrivatePostfix:
    """`postfix -c DIR start` / `stop` on a configuration of our own."""

    def __init__(self, lmtp_port: int, smtpd_port: int) -> None:
        """localhost goes to our LMTP over TCP (`lmtp_port`); the virtual
        domain example.org over the UNIX socket `lmtp_socket` (which the
        test must serve, owned by the postfix user as Dovecot's
        `unix_listener { user = postfix }`)."""
        self.root = Path(tempfile.mkdtemp(prefix="maa-postfix-", dir="/tmp"))
        self.lmtp_socket = self.root / "dovecot-lmtp"
        self.root.chmod(0o755)
        self.config_dir = self.root / "etc"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.maillog = self.root / "maillog"
        self.smtpd_port = smtpd_port
        for path in (self.config_dir, self.queue, self.data):
            path.mkdir()
        owner = pwd.getpwnam("postfix")
        os.chown(self.data, owner.pw_uid, owner.pw_gid)  # master.lock, caches
        lmtp = f"lmtp:inet:127.0.0.1:{lmtp_port}"
        lmtp_unix = f"lmtp:unix:{self.lmtp_socket}"
        (self.config_dir / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {self.data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.maillog}
maillog_file_prefixes = {self.root}
myhostname = mx.example.org
mydomain = example.org
myorigin = example.org
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
biff = no
# local(8) for localhost: no aliases, no passwd check; mailboxes over LMTP
mydestination = localhost
alias_maps =
alias_database =
local_recipient_maps =
mailbox_transport = {lmtp}
# virtual mailbox domain example.org: straight to LMTP, on a UNIX socket
virtual_mailbox_domains = example.org
virtual_transport = {lmtp_unix}
smtpd_reject_unlisted_recipient = no
# Postfix's lmtp client folds lines over 998 octets by default; we want to
# see that *our* side keeps long lines whole.
lmtp_line_length_limit = 0
""")
        (self.config_dir / "master.cf").write_text(
            MASTER_CF.format(smtpd_address=f"127.0.0.1:{smtpd_port}"))

    def start(self) -> PrivatePostfix:
        self._postfix("start")
        return self

    def stop(self) -> None:
        """`postfix stop`, wait for the master to be gone, remove the tree."""
        try:
            pid = self.master_pid()
            self._postfix("stop", check=False)
            deadline = time.monotonic() + 15
            while pid and _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid and _alive(pid):
                self._postfix("abort", check=False)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def master_pid(self) -> int:
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def sendmail(self, sender: str, recipients: list[str], message: bytes) -> None:
        """`sendmail -C DIR -f SENDER RCPT...` (postdrop into our maildrop)."""
        subprocess.run([SENDMAIL, "-C", str(self.config_dir), "-f", sender, "--", *recipients],
                       input=message, check=True, timeout=30, capture_output=True)

    def log_text(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle: str, timeout: float = 30) -> str:
        """The first maillog line containing `needle` (polls; bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_text().splitlines():
                if needle in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the Postfix log:\n{self.log_text()}")
            time.sleep(0.05)

    def _postfix(self, command: str, check: bool = True) -> None:
        done = subprocess.run([POSTFIX, "-c", str(self.config_dir), command],
                              check=False, capture_output=True, timeout=60)
        if check and done.returncode != 0:
            # postfix(1) writes its reasons to the log, not to a non-tty stderr
            raise RuntimeError(f"postfix {command} failed ({done.returncode}):\n{self.log_text()}")


def _alive(pid: int) -> bool:
    """Running, not a zombie (the daemonised master is reparented to PID 1,
    which may reap it late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
