"""IDLE (RFC 2177): push mailbox changes until the client sends DONE.

Changes arrive through `Mailbox.wait_for_change` (our own process's writes
and, through the storage's watcher, other processes'); the client hears of
them at once. `* OK Still here` every imap_idle_notify_interval keeps NAT
boxes and clients happy, as Dovecot does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from maa_server.protocols.connection import LineTooLong
from maa_server.protocols.imap import args as A
from maa_server.protocols.imap.tokens import Arg

if TYPE_CHECKING:
    from maa_server.protocols.imap.session import ImapSession


async def cmd_idle(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    A.count(args, 0)
    await s.report_changes(allow_expunge=True, full_sync=True)
    await s.conn.send(b"+ idling\r\n")
    keepalive = float(s.setting("imap_idle_notify_interval", 120.0)) or 120.0
    deadline = time.monotonic() + s.idle_timeout()
    next_keepalive = time.monotonic() + keepalive
    reader = asyncio.ensure_future(s.conn.readline(s.max_line))
    waiter: asyncio.Future[bool] | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError()
            if now >= next_keepalive:
                s.write(b"* OK Still here\r\n")
                await s.conn.drain()
                next_keepalive = now + keepalive
            timeout = min(next_keepalive, deadline) - now
            sel = s.selected
            if sel is not None and sel.mailbox.version != sel.seen_version:
                # Changed while we were busy: report now, do not wait.
                await s.report_changes(allow_expunge=True)
                await s.conn.drain()
            if sel is not None and waiter is None:
                # No timer of our own for mailbox_idle_check_interval: the
                # mailbox's one watcher, shared by all its sessions, checks
                # the disk and wakes us on a change. An idle session wakes
                # only for the keepalive (10,000 of them must cost ~0 CPU).
                waiter = asyncio.ensure_future(sel.mailbox.wait_for_change(timeout))
            pending = {reader} | ({waiter} if waiter is not None else set())
            done, _ = await asyncio.wait(pending, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                break
            if waiter is not None and waiter in done:
                changed, waiter = waiter.result(), None
                if not changed:
                    continue  # time for the keepalive
                await s.report_changes(allow_expunge=True, full_sync=True)
                if s.selected is not None:  # RFC 7162 3.2.10, untagged in IDLE
                    s.write(s.selected.qresync_tagline(None, s.qresync)[0])
                await s.conn.drain()
        try:
            line = reader.result()
        except LineTooLong:
            line = b""
    finally:
        for task in (reader, waiter):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
    if line.rstrip(b"\r\n").upper() != b"DONE":
        s.tagged(tag, "BAD", "Expected DONE.")
        return None
    return "Idle completed."
