"""A real maa-server POP3/LMTP stack on loopback, run in a background thread
so blocking clients (poplib, smtplib, fetchmail, the real Dovecot) can talk
to it from the test. Real config parser, real auth, real Maildir storage."""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from maa_server.auth import build_authenticator
from maa_server.config import parse_config_text
from maa_server.protocols.connection import Connection
from maa_server.protocols.context import ServerContext
from maa_server.storage.factory import open_mail_store

PASSWORD = "secret"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def client_tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class MaaStack:
    """POP3 (STLS), POP3S, LMTP over TCP and over a UNIX socket, and IMAP
    (for IDLE: deliveries must show up there at once)."""

    def __init__(self, root: Path, users: tuple[str, ...] = ("alice", "bob"),
                 extra_config: str = "", user_fields: dict[str, str] | None = None,
                 uid: int | None = None, gid: int | None = None) -> None:
        self.root = root
        self.users_file = root / "users"
        lines = []
        for user in users:
            home = root / "home" / user
            (home / "Maildir" / "cur").mkdir(parents=True, exist_ok=True)
            (home / "Maildir" / "new").mkdir(exist_ok=True)
            (home / "Maildir" / "tmp").mkdir(exist_ok=True)
            extra = (user_fields or {}).get(user, "")
            # Dovecot refuses UID 0 for mail users; root (CI) leaves them empty.
            owner = (os.getuid() or "") if uid is None else uid
            group = (os.getgid() or "") if gid is None else gid
            lines.append(f"{user}:{{PLAIN}}{PASSWORD}:{owner}:{group}::{home}::{extra}")
        self.users_file.write_text("\n".join(lines) + "\n")
        self.cert, self.key = make_certificate(root)
        self.config_text = f"""
protocols = pop3 lmtp
listen = 127.0.0.1
base_dir = {root}/run
log_path = /dev/stderr
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 0
login_greeting = Dovecot (Debian) ready.
{extra_config}
passdb {{
  driver = passwd-file
  args = {self.users_file}
}}
userdb {{
  driver = passwd-file
  args = {self.users_file}
}}
"""
        self.config_path = root / "maa.conf"
        self.config_path.write_text(self.config_text)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: list[asyncio.AbstractServer] = []
        self.pop3_port = self.pop3s_port = self.lmtp_port = self.imap_port = 0
        self.lmtp_path = str(root / "lmtp.sock")

    def restart(self, config_text: str) -> MaaStack:
        """Stop, then serve the same users and Maildirs with another config."""
        self.stop()
        self.config_text = config_text
        self.config_path.write_text(config_text)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        return self.start()

    def maildir(self, user: str) -> Path:
        return self.root / "home" / user / "Maildir"

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> MaaStack:
        _forget_cached_stores()
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        from maa_server.protocols.imap.session import (
            handle_connection as imap_connection,
        )
        from maa_server.protocols.lmtp.server import start_lmtp
        from maa_server.protocols.pop3.session import handle_connection

        cfg = parse_config_text(self.config_text, str(self.config_path))
        server_ssl: ssl.SSLContext | None = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        assert server_ssl is not None
        server_ssl.load_cert_chain(self.cert, self.key)
        implicit_ssl = server_ssl
        if str(cfg.get("ssl")) == "no":
            server_ssl = None  # as the daemon does: no STLS/STARTTLS offered
        self.cfg = cfg
        self.ctx = ServerContext(config=cfg, auth=build_authenticator(cfg),
                                 open_store=lambda user: open_mail_store(cfg, user),
                                 ssl_context=server_ssl)

        def acceptor(tls: bool) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                            Coroutine[Any, Any, None]]:
            async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await handle_connection(Connection(reader, writer, server_ssl=server_ssl), self.ctx)
            return accepted

        plain = await asyncio.start_server(acceptor(False), "127.0.0.1", 0)
        implicit = await asyncio.start_server(acceptor(True), "127.0.0.1", 0, ssl=implicit_ssl)
        async def imap_accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await imap_connection(Connection(reader, writer, server_ssl=server_ssl), self.ctx)

        imap = await asyncio.start_server(imap_accepted, "127.0.0.1", 0)
        self.imap_port = imap.sockets[0].getsockname()[1]
        lmtp = await start_lmtp(self.ctx, host="127.0.0.1", port=0)
        lmtp_unix = await start_lmtp(self.ctx, path=self.lmtp_path)
        self.servers = [plain, implicit, lmtp, lmtp_unix, imap]
        self.pop3_port = plain.sockets[0].getsockname()[1]
        self.pop3s_port = implicit.sockets[0].getsockname()[1]
        self.lmtp_port = lmtp.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for server in self.servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def stop(self) -> None:
        try:
            self.run(self._stop(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            _forget_cached_stores()


def _forget_cached_stores() -> None:
    """open_mail_store caches stores per process by user name and location,
    not by home: forget other tests' stores (and their event-loop objects)
    so that this test's "alice" is its own."""
    from maa_server.storage import factory

    factory._stores.clear()


def put_message(maildir: Path, name: str, data: bytes, subdir: str = "new") -> Path:
    """Drop a file as an MTA would (Dovecot picks such files up; spec 5.12)."""
    path = maildir / subdir / name
    path.write_bytes(data)
    return path
