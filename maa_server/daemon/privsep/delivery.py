"""LMTP delivery with privilege separation: each recipient's copy is saved
by the worker running as that recipient's uid/gid (Dovecot's lmtp drops to
the user the same way before it opens the mailbox: mail-storage-service
with the user's uid), through delivery.deliver_message, Sieve included.

The master sends the message as a sealed memfd (no size limit on the
channel, no temporary file anyone else could open) and the envelope as
JSON; the worker answers with the outcome, which the LMTP code turns into
its per-recipient reply exactly as in one process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any

from maa_server.auth.interface import UserInfo
from maa_server.auth.remote import user_from_dict, user_to_dict
from maa_server.daemon.privsep.channel import ChannelClosed
from maa_server.daemon.privsep.pool import WorkerPool, WorkerRefused
from maa_server.delivery import DeliveryEnvelope, DeliveryFailed
from maa_server.logs import MailLog, get_log


def _message_fd(data: bytes) -> int:
    fd = os.memfd_create("maa-delivery", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.lseek(fd, 0, os.SEEK_SET)
        import fcntl

        seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except BaseException:
        os.close(fd)
        raise
    return fd


def install(ctx: Any, pool: WorkerPool) -> None:
    """Make `ctx.deliver` hand each recipient to its worker."""

    async def deliver(user: UserInfo, data: bytes, envelope: DeliveryEnvelope, log: MailLog) -> None:
        try:
            fd = await asyncio.to_thread(_message_fd, data)
        except OSError as exc:
            raise OSError(f"can't pass the message to the mail process: {exc.strerror}") from exc
        try:
            reply = await pool.deliver(user, {"user": user_to_dict(user),
                                              "envelope": dataclasses.asdict(envelope),
                                              "log_prefix": log.prefix}, [fd])
        except WorkerRefused as exc:
            raise OSError(str(exc)) from exc
        except ChannelClosed as exc:
            raise OSError("the mail process exited during the delivery") from exc
        finally:
            os.close(fd)
        outcome = reply.get("outcome")
        if outcome == "ok":
            return
        text = str(reply.get("text") or "Temporary internal error")
        if outcome == "failed":
            raise DeliveryFailed(text, bool(reply.get("temporary")), bool(reply.get("quota")))
        raise OSError(text)

    ctx.deliver = deliver


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


async def run_delivery(ctx: Any, message: dict[str, Any], fds: list[int]) -> dict[str, Any]:
    """The worker's side: save one recipient's copy as this process's user."""
    from maa_server.delivery import deliver_message
    from maa_server.storage.interface import MailboxError

    try:
        if len(fds) != 1:
            return {"outcome": "error", "text": "delivery without its message"}
        data = await asyncio.to_thread(_read_all, fds[0])
    finally:
        for fd in fds:
            os.close(fd)
    user = user_from_dict(message.get("user") or {})
    fields = {f.name for f in dataclasses.fields(DeliveryEnvelope)}
    envelope = DeliveryEnvelope(**{k: v for k, v in dict(message.get("envelope") or {}).items() if k in fields})
    log = get_log(str(message.get("log_prefix") or f"lmtp({user.username})"))
    try:
        await deliver_message(ctx.config, user, data, envelope, log)
    except DeliveryFailed as exc:
        return {"outcome": "failed", "text": str(exc), "temporary": exc.temporary, "quota": exc.quota}
    except (MailboxError, OSError) as exc:
        return {"outcome": "error", "text": str(exc)}
    return {"outcome": "ok"}
