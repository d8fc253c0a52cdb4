"""A real maa IMAP server on loopback for the integration tests: real config
parser, real auth (passwd-file), real Maildir storage, run on an event loop in
a background thread so blocking clients (imaplib, imapclient, raw sockets)
can drive it. Plain with STARTTLS, and implicit TLS."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.config import passwd_file_databases

PASSWORD = "secret"

NAMESPACE = r"""
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
}
"""


def make_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ImapServer:
    def __init__(self, root: Path, extra_config: str = "",
                 users: tuple[str, ...] = ("alice", "bob")) -> None:
        self.root = root
        users_file = root / "users"
        lines = []
        for user in users:
            home = root / "home" / user
            home.mkdir(parents=True, exist_ok=True)
            # uid/gid left empty: the test process owns the mail (uid 0 is
            # refused in passwd-file, as Dovecot does).
            lines.append(f"{user}:{{PLAIN}}{PASSWORD}::::{home}::")
        users_file.write_text("\n".join(lines) + "\n")
        self.cert, self.key = make_certificate(root)
        self.config_text = f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir:LAYOUT=fs
first_valid_uid = 0
login_greeting = Dovecot (Debian) ready.
{NAMESPACE}
{passwd_file_databases(users_file)}{extra_config}
"""
        (root / "maa.conf").write_text(self.config_text)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: list[asyncio.AbstractServer] = []
        self.port = self.tls_port = 0

    def maildir(self, user: str) -> Path:
        return self.root / "home" / user / "Maildir"

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> ImapServer:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        from maa_server.auth import build_authenticator
        from maa_server.config import parse_config_text
        from maa_server.protocols.connection import Connection
        from maa_server.protocols.context import ServerContext
        from maa_server.protocols.imap.session import handle_connection
        from maa_server.storage.factory import forget_stores, open_mail_store

        # The store cache is keyed by user name and the unexpanded location,
        # so each test's fresh home needs a fresh cache.
        forget_stores()
        cfg = parse_config_text(self.config_text, str(self.root / "maa.conf"))
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(self.cert, self.key)
        self.ctx = ServerContext(config=cfg, auth=build_authenticator(cfg),
                                 open_store=lambda user: open_mail_store(cfg, user),
                                 ssl_context=server_ssl)

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handle_connection(Connection(reader, writer, server_ssl=server_ssl), self.ctx)
            except asyncio.CancelledError:
                pass  # the harness is stopping

        plain = await asyncio.start_server(accepted, "127.0.0.1", 0)
        implicit = await asyncio.start_server(accepted, "127.0.0.1", 0, ssl=server_ssl)
        self.servers = [plain, implicit]
        self.port = plain.sockets[0].getsockname()[1]
        self.tls_port = implicit.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for server in self.servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        try:
            self.run(self._stop(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class Wire:
    """A raw IMAP client for exact answers: `cmd()` returns the lines up to
    and including the tagged one (literals joined into their line)."""

    def __init__(self, port: int, tls: bool = False, source: str = "127.0.0.1") -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                        source_address=(source, 0))
        if tls:
            sock = client_tls().wrap_socket(sock)
        self.sock = sock
        self.file = sock.makefile("rb")
        self.greeting = self.readline()
        self.n = 0

    def readline(self) -> str:
        line = self.file.readline()
        if not line:
            raise ConnectionError("closed")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text.endswith("}") and "{" in text:
            size = int(text[text.rindex("{") + 1:-1])
            text += "\r\n" + self.file.read(size).decode("utf-8", "replace") + self.readline()
        return text

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, text: str, tag: str | None = None) -> list[str]:
        self.n += 1
        tag = tag or f"t{self.n}"
        self.send(f"{tag} {text}\r\n".encode())
        return self.until(tag)

    def until(self, tag: str) -> list[str]:
        out = []
        while True:
            line = self.readline()
            out.append(line)
            if line.startswith(tag + " "):
                return out

    def login(self, user: str = "alice") -> list[str]:
        return self.cmd(f"LOGIN {user} {PASSWORD}")

    def starttls(self) -> None:
        assert self.cmd("STARTTLS")[-1].endswith("OK Begin TLS negotiation now.")
        self.sock = client_tls().wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        # The makefile() reader holds the socket open until it is closed too.
        for closable in (self.file, self.sock):
            try:
                closable.close()
            except OSError:
                pass
