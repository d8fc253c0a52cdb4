"""Start Dovecot and maa-server side by side on one generated configuration.

Both read the same Dovecot-format file (only base_dir, log and ports
differ), serve the same user from their own copy of the same Maildir, and
listen on private loopback ports. Dovecot runs as root with its usual
privilege separation; maa-server is started as root too (see Server.start)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

BENCH_USER = "maabench"
PASSWORD = "bench-secret"
REPO = Path(__file__).resolve().parents[1]

CONFIG = """\
base_dir = {base}/run
instance_name = {name}
protocols = imap pop3 lmtp
listen = 127.0.0.1
log_path = {base}/mail.log
ssl = yes
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir:LAYOUT=fs
first_valid_uid = {uid}
mail_max_userip_connections = 100000
passdb {{
  driver = passwd-file
  args = scheme=BLF-CRYPT {base}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
  }}
  process_limit = 20000
  client_limit = 20000
}}
service imap {{
  process_limit = 20000
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
default_client_limit = 20000
default_process_limit = 20000
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(BENCH_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        BENCH_USER], check=True)
        return pwd.getpwnam(BENCH_USER)


def remove_user() -> None:
    subprocess.run(["userdel", BENCH_USER], check=False, capture_output=True)


def ensure_dovecot() -> None:
    if shutil.which("dovecot"):
        return
    Path("/usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
    os.chmod("/usr/sbin/policy-rc.d", 0o755)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "dovecot-imapd", "dovecot-pop3d",
                    "dovecot-lmtpd"], check=True, env=env)


def make_cert(base: Path) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    (base / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (base / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@dataclass
class Server:
    name: str  # "dovecot" or "maa"
    base: Path
    imap: int = field(default_factory=free_port)
    imaps: int = field(default_factory=free_port)
    pop3: int = field(default_factory=free_port)
    lmtp: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return self.base / "home" / "bench"

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"

    def prepare(self, user: pwd.struct_passwd, password_hash: str) -> Path:
        if self.base.exists():
            shutil.rmtree(self.base)
        (self.base / "run").mkdir(parents=True)
        self.home.mkdir(parents=True)
        make_cert(self.base)
        (self.base / "users").write_text(f"bench:{{BLF-CRYPT}}{password_hash}\n")
        conf = self.base / "server.conf"
        conf.write_text(CONFIG.format(base=self.base, name=f"bench-{self.name}", uid=user.pw_uid,
                                      gid=user.pw_gid, imap=self.imap, imaps=self.imaps,
                                      pop3=self.pop3, lmtp=self.lmtp))
        for path in (self.base, self.base / "home"):
            os.chmod(path, 0o755)
        return conf

    def start(self, user: pwd.struct_passwd) -> None:
        conf = self.base / "server.conf"
        if self.name == "dovecot":
            cmd = ["dovecot", "-F", "-c", str(conf)]
        else:
            # Started as root like Dovecot: the daemon binds, then (with
            # privilege separation) serves the user from workers under the
            # userdb uid; pids() and pss_kib() count every process it forks.
            (self.base / "mail.log").touch()
            cmd = [sys.executable, "-m", "maa_server.cli.server", "-F", "-c", str(conf)]
        with open(self.base / "stderr.log", "wb") as stderr:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: "
                                   + (self.base / "stderr.log").read_text(errors="replace")[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.imap), timeout=1) as s:
                    s.recv(100)
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start listening")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def pids(self) -> list[int]:
        """The server's processes: the one we started and all its
        descendants (Dovecot's login, auth and imap processes; maa-server's
        per-user workers, which run in sessions of their own)."""
        if self.proc is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def pss_kib(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total

    def cpu_seconds(self) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError):
                continue
        return total / ticks


def password_hash() -> str:
    # Cost 5 as `doveadm pw -s BLF-CRYPT` makes by default; $2y$ as Dovecot writes.
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(5)).decode().replace("$2b$", "$2y$", 1)
