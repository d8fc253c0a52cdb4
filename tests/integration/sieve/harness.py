"""The loopback stack of the LMTP tests plus a ManageSieve listener, with
Sieve enabled for LMTP and a recording `sendmail_path` (a shell script that
writes its arguments and input to one file per call)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from pathlib import Path

import pytest

from maa_server.protocols.connection import Connection
from tests.integration.pop3.maa_pop3_harness import MaaStack

SENDMAIL = """#!/bin/sh
out="{outdir}/mail.$$.$(date +%s%N)"
printf 'ARGS: %s\\n' "$*" > "$out.tmp"
cat >> "$out.tmp"
mv "$out.tmp" "$out"
"""

SIEVE_CONFIG = """
protocols = pop3 lmtp sieve
auth_username_format = %Ln
sendmail_path = {sendmail}
postmaster_address = postmaster@example.com
hostname = mx.example.com
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
protocol lda {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
{plugin}
}}
"""


class SieveStack(MaaStack):
    """MaaStack + ManageSieve on an ephemeral port + sent-mail recorder."""

    def __init__(self, root: Path, plugin: str = "", extra_config: str = "",
                 uid: int | None = None, gid: int | None = None) -> None:
        self.outbox = root / "outbox"
        self.outbox.mkdir(parents=True, exist_ok=True)
        sendmail = root / "sendmail.sh"
        sendmail.write_text(SENDMAIL.format(outdir=self.outbox))
        sendmail.chmod(0o755)
        config = SIEVE_CONFIG.format(sendmail=sendmail, plugin=plugin) + extra_config
        super().__init__(root, extra_config="auth_failure_delay = 0\n" + config, uid=uid, gid=gid)
        self.sieve_port = 0

    async def _start(self) -> None:
        await super()._start()
        from maa_server.protocols.managesieve.session import handle_connection

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await handle_connection(Connection(reader, writer, server_ssl=self.ctx.ssl_context), self.ctx)

        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        self.servers.append(server)
        self.sieve_port = server.sockets[0].getsockname()[1]

    def home(self, user: str) -> Path:
        return self.root / "home" / user

    def set_script(self, user: str, text: str, name: str = "test") -> None:
        """Install and activate a script the way Pigeonhole lays it out."""
        scripts = self.home(user) / "sieve"
        scripts.mkdir(exist_ok=True)
        (scripts / f"{name}.sieve").write_text(text)
        link = self.home(user) / ".dovecot.sieve"
        link.unlink(missing_ok=True)
        link.symlink_to(f"sieve/{name}.sieve")

    def sent(self) -> list[tuple[str, bytes]]:
        """(sendmail arguments, message) per call, oldest first."""
        out = []
        for path in sorted(self.outbox.glob("mail.*"), key=lambda p: p.stat().st_mtime_ns):
            if path.suffix == ".tmp":
                continue
            head, _, body = path.read_bytes().partition(b"\n")
            out.append((head.decode().removeprefix("ARGS: "), body))
        return out

    def folder(self, user: str, name: str) -> list[bytes]:
        """Messages in a Maildir++ folder ("INBOX" or ".Name")."""
        box = self.maildir(user) if name == "INBOX" else self.maildir(user) / f".{name}"
        return [p.read_bytes() for sub in ("new", "cur") if (box / sub).is_dir()
                for p in sorted((box / sub).iterdir())]

    def lmtp_send(self, message: bytes, rcpt: str = "alice@example.com",
                  mail_from: str = "sender@example.org") -> dict[str, tuple[int, bytes]]:
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as client:
            return client.sendmail(mail_from, [rcpt], message)


def message(n: int, subject: str = "hello", extra: str = "", sender: str = "Sender <sender@example.org>",
            to: str = "alice@example.com") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <m{n}@example.org>\r\n"
            f"{extra}\r\nbody {n}\r\n").encode()


def sieve_log(caplog: pytest.LogCaptureFixture, user: str = "alice") -> list[str]:
    """`Level: text` of the delivery log lines for `user`."""
    return [f"{r.levelname.capitalize()}: {r.getMessage()}" for r in caplog.records
            if getattr(r, "dovecot_prefix", "").startswith(f"lmtp({user})<")]


@pytest.fixture
def stack(tmp_path: Path, caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="maa")
    running = SieveStack(tmp_path).start()
    try:
        yield running
    finally:
        running.stop()
