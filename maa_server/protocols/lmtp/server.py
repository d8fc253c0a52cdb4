"""The LMTP listener: `start_lmtp(ctx, host, port, path)` and the DATA
handler that delivers to every accepted recipient (RFC 2033 section 4.2:
one reply per recipient, in RCPT order)."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from typing import Any

from maa_server.auth.mail_access import mail_access_refusal
from maa_server.delivery import (
    DeliveryEnvelope,
    DeliveryFailed,
    TraceInfo,
    deliver_message,
    lmtp_headers,
    message_id,
    to_lf,
)
from maa_server.logs import get_log
from maa_server.protocols.context import ServerContext
from maa_server.protocols.lmtp.protocol import DovecotLMTP, LmtpTransaction
from maa_server.protocols.lmtp.recipients import Recipient, failed_reply, saved_reply
from maa_server.protocols.lmtp.settings import DeliverySettings
from maa_server.storage.interface import MailboxError

# aiosmtpd keeps a message in memory while it arrives; this bounds it.
DATA_SIZE_LIMIT = 64 * 1024 * 1024


def lmtp_session_id() -> str:
    """Dovecot's LMTP session id: a 128-bit GUID, base64 without padding
    (22 characters, e.g. `wHpDNghmCGsxOQAAg+zDdQ`)."""
    return base64.b64encode(os.urandom(16)).decode("ascii").rstrip("=")


class LmtpDeliveryHandler:
    """aiosmtpd handler: DATA delivers to each recipient of the transaction."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.active: dict[str, int] = {}  # lmtp_user_concurrency_limit bookkeeping

    async def handle_DATA(self, server: DovecotLMTP, session: Any, envelope: Any) -> str:
        txn = server.txn
        assert txn is not None
        content: bytes = envelope.original_content or b""
        body = to_lf(content)
        msgid = message_id(body)
        single = len(txn.recipients) == 1
        replies = []
        for rcpt in txn.recipients:
            try:
                reply = await self._deliver_one(server, txn, rcpt, body, msgid, single)
            except Exception as exc:  # noqa: BLE001 - RFC 2033 needs a reply for every recipient
                get_log(f"lmtp({rcpt.username})<{os.getpid()}><{rcpt.rcpt_id}>").error(
                    f"msgid={msgid}: delivery failed: {type(exc).__name__}: {exc}")
                reply = failed_reply(rcpt, "Temporary internal error", True, False)
            replies.append(reply)
        server.in_data_reply = True
        return "\r\n".join(replies)

    async def _deliver_one(self, server: DovecotLMTP, txn: LmtpTransaction, rcpt: Recipient,
                           body: bytes, msgid: str, single: bool) -> str:
        settings = server.settings
        log = get_log(f"lmtp({rcpt.username})<{os.getpid()}><{rcpt.rcpt_id}>")
        limit = settings.lmtp_user_concurrency_limit
        if limit and self.active.get(rcpt.username, 0) >= limit:
            return f"451 4.3.0 <{rcpt.address}> Too many concurrent deliveries for user"
        refusal = mail_access_refusal(rcpt.user, self.ctx.config)
        if refusal:  # lmtp-local.c: mail_storage_service_next() refused the user (observed 2.3.19)
            log.error(f"Failed to initialize user: {refusal}")
            return f"451 4.3.0 <{rcpt.address}> Temporary internal error"
        header_address: str | None = None
        if single and settings.lmtp_hdr_delivery_address != "none":
            header_address = str(rcpt.address)
            if settings.lmtp_hdr_delivery_address == "original" and rcpt.orcpt:
                header_address = rcpt.orcpt
        trace = None
        if settings.lmtp_add_received_header:
            tls = server.tls_description()
            trace = TraceInfo(
                lhlo_name=(server.session.host_name or "") if server.session else "",
                client_ip=server.client_ip, tls_description=tls,
                hostname=server.hostname, transaction_id=txn.transaction_id,
                protocol="LMTPS" if tls else "LMTP")
        data = lmtp_headers(str(txn.mail_from), header_address, trace, header_address) + body
        mailbox = "INBOX"
        if settings.lmtp_save_to_detail_mailbox and rcpt.detail:
            mailbox = rcpt.detail
        envelope = DeliveryEnvelope(mail_from=str(txn.mail_from), rcpt_to=str(rcpt.address),
                                    orig_rcpt=rcpt.orcpt or "", mailbox=mailbox, protocol="lmtp")
        self.active[rcpt.username] = self.active.get(rcpt.username, 0) + 1
        try:
            if self.ctx.deliver is not None:  # privilege separation: the user's worker saves it
                await self.ctx.deliver(rcpt.user, data, envelope, log)
            else:
                store = await self.ctx.open_store(rcpt.user)
                await deliver_message(self.ctx.config, rcpt.user, data, envelope, log, store)
        except DeliveryFailed as exc:
            temporary = exc.temporary or (exc.quota and settings.quota_full_tempfail)
            return failed_reply(rcpt, str(exc), temporary, exc.quota)
        except (MailboxError, OSError) as exc:
            log.error(f"msgid={msgid}: Couldn't open mail storage: {exc}")
            return failed_reply(rcpt, "Temporary internal error", True, False)
        finally:
            self.active[rcpt.username] -= 1
            if not self.active[rcpt.username]:
                del self.active[rcpt.username]
        return saved_reply(rcpt)

    async def handle_exception(self, error: Exception) -> str:
        get_log(f"lmtp({os.getpid()})").error(f"Internal error: {error!r}")
        return "451 4.3.0 Temporary internal error"


async def start_lmtp(ctx: ServerContext, host: str | None = None, port: int | None = None,
                     path: str | None = None, mode: int = 0o666,
                     uid: int = -1, gid: int = -1) -> asyncio.AbstractServer:
    """Listen on TCP (`host`, `port`) or a UNIX socket (`path`, owned by
    `uid`/`gid` and chmod `mode` as Dovecot's `unix_listener lmtp { mode =
    0600 user = postfix group = postfix }`; -1 leaves the owner as is)."""
    loop = asyncio.get_running_loop()
    handler = LmtpDeliveryHandler(ctx)
    unix = path is not None

    def factory() -> DovecotLMTP:
        settings = DeliverySettings.load(ctx.config, "lmtp")
        protocol = DovecotLMTP(handler, ctx=ctx, settings=settings, unix=unix,
                               session_id=lmtp_session_id(), tls_context=ctx.ssl_context,
                               data_size_limit=DATA_SIZE_LIMIT, loop=loop)
        return protocol

    if unix:
        assert path is not None
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)  # a stale socket from an earlier run
        except FileNotFoundError:
            pass
        server = await loop.create_unix_server(factory, path)
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
        os.chmod(path, mode)
        return server
    return await loop.create_server(factory, host or "127.0.0.1", 24 if port is None else port)

