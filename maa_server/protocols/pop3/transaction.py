"""POP3 TRANSACTION and UPDATE states (RFC 1939 sections 5 and 6).

One handler per command, looked up in `COMMANDS`; reply texts are Dovecot's
(src/pop3/pop3-commands.c, observed against 2.3.19.1). Message bytes are read
off the event loop by the storage, converted to CRLF and dot-stuffed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from maa_server.logs import MailLog
from maa_server.protocols.connection import Connection
from maa_server.protocols.pop3.authorization import POST_LOGIN_CAPABILITIES
from maa_server.protocols.pop3.maildrop import Maildrop
from maa_server.protocols.pop3.parser import (
    ArgumentError,
    dot_stuff,
    err,
    multiline,
    ok,
    parse_size,
    to_crlf,
    top_of_message,
)
from maa_server.protocols.pop3.settings import Pop3Settings
from maa_server.storage.interface import SEEN, Mailbox, MailboxError, NoSuchMessage

# Messages bigger than this are converted to CRLF in a thread, not on the loop.
THREAD_CONVERT_THRESHOLD = 1 << 20
STORAGE_ERROR = "[SYS/TEMP] Internal error occurred. Refer to server log for more information."


class QuitSession(Exception):
    """QUIT was handled; the session ends with `reason` in the log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Transaction:
    conn: Connection
    mailbox: Mailbox
    maildrop: Maildrop
    settings: Pop3Settings
    log: MailLog
    last_accessed: int = 0  # for LAST (pop3_enable_last): highest msgnum RETR'd
    deleted_count: int = 0  # %d of pop3_logout_format: set in UPDATE
    # pop3_save_uidl: stores shown UIDLs as dovecot-uidlist `P` fields
    save_uidls: Callable[[dict[int, str]], Awaitable[None]] | None = None
    _saved: set[int] = field(default_factory=set)

    async def handle(self, name: str, args: str) -> None:
        handler = COMMANDS.get(name)
        if handler is None or (name == "LAST" and not self.settings.pop3_enable_last):
            await self.conn.send(err(f"Unknown command: {name}"))
            return
        try:
            await handler(self, args)
        except ArgumentError as exc:
            await self.conn.send(err(str(exc)))

    # --- reading -----------------------------------------------------------

    async def _message_crlf(self, index: int) -> bytes:
        uid = self.maildrop.messages[index].uid
        raw = await self.mailbox.read_message(uid)
        if len(raw) > THREAD_CONVERT_THRESHOLD:
            return await asyncio.to_thread(to_crlf, raw)
        return to_crlf(raw)

    async def _send_body(self, first_line: bytes, crlf: bytes) -> int:
        """Send `first_line`, the stuffed data and the final dot; returns the
        bytes counted for the logout line (all but the final dot, as
        Dovecot counts them)."""
        if len(crlf) > THREAD_CONVERT_THRESHOLD:
            stuffed = await asyncio.to_thread(dot_stuff, crlf)
        else:
            stuffed = dot_stuff(crlf)
        if b"\0" in stuffed and "outlook-no-nuls" in self.settings.workarounds:
            stuffed = stuffed.replace(b"\0", b"\x80")
        # One write and one drain: the bytes are in memory already, and the
        # transport's buffer plus drain() give the backpressure; slicing
        # into chunks only copied them.
        self.conn.write(first_line)
        self.conn.write(stuffed)
        await self.conn.send(b".\r\n")
        return len(first_line) + len(stuffed)

    async def _read_or_report(self, index: int) -> bytes | None:
        try:
            return await self._message_crlf(index)
        except NoSuchMessage:
            # Expunged by someone else since our snapshot (observed text).
            await self.conn.send(err(f"Message {index + 1} expunged."))
        except (MailboxError, OSError) as exc:
            self.log.error(f"read of UID {self.maildrop.messages[index].uid} failed: {exc}")
            await self.conn.send(err(STORAGE_ERROR))
        return None

    # --- commands ------------------------------------------------------------

    async def cmd_capa(self, args: str) -> None:
        await self.conn.send(multiline(ok(), POST_LOGIN_CAPABILITIES))

    async def cmd_noop(self, args: str) -> None:
        await self.conn.send(ok())

    async def cmd_stat(self, args: str) -> None:
        drop = self.maildrop
        await self.conn.send(ok(f"{drop.live_count} {drop.live_size}"))

    async def cmd_list(self, args: str) -> None:
        drop = self.maildrop
        if args:
            index, _ = drop.message(args)
            await self.conn.send(ok(f"{index + 1} {drop.messages[index].size}"))
            return
        lines = [f"{i + 1} {drop.messages[i].size}" for i in drop.live()]
        await self.conn.send(multiline(ok(f"{drop.live_count} messages:"), lines))

    async def cmd_uidl(self, args: str) -> None:
        drop = self.maildrop
        if drop.uidls_unavailable:
            # What Dovecot does on Maildir with %m (observed): log, disconnect.
            self.log.error("UIDL: Header MD5 not found "
                           f"(pop3_uidl_format={self.settings.pop3_uidl_format} not supported by storage?)")
            raise QuitSession("POP3 UIDLs couldn't be listed")
        if args:
            index, _ = drop.message(args)
            await self._save_uidls([index])
            await self.conn.send(ok(f"{index + 1} {drop.uidls[index]}"))
            return
        live = drop.live()
        await self._save_uidls(live)
        lines = [f"{i + 1} {drop.uidls[i]}" for i in live]
        await self.conn.send(multiline(ok(), lines))

    async def _save_uidls(self, indexes: list[int]) -> None:
        """pop3_save_uidl: freeze a UIDL the first time a client sees it
        (pop3-commands.c, cmd_uidl -> mail_update_pop3_uidl)."""
        if self.save_uidls is None:
            return
        drop = self.maildrop
        todo = {drop.messages[i].uid: drop.uidls[i] for i in indexes
                if i not in self._saved and not drop.messages[i].pop3_uidl}
        if not todo:
            return
        try:
            await self.save_uidls(todo)
        except (MailboxError, OSError) as exc:
            # The listing still goes out; the UIDLs are saved next time.
            self.log.warning(f"Couldn't save POP3 UIDLs: {exc}")
            return
        self._saved.update(indexes)

    async def cmd_retr(self, args: str) -> None:
        drop = self.maildrop
        index, _ = drop.message(args)
        crlf = await self._read_or_report(index)
        if crlf is None:
            drop.stats.retr_count += 1  # Dovecot counts the attempt, with 0 bytes
            return
        sent = await self._send_body(ok(f"{drop.messages[index].size} octets"), crlf)
        drop.stats.retr_count += 1
        drop.stats.retr_bytes += sent
        if not self.settings.pop3_no_flag_updates and SEEN not in drop.messages[index].flags:
            drop.seen.add(index)
        self.last_accessed = max(self.last_accessed, index + 1)

    async def cmd_top(self, args: str) -> None:
        drop = self.maildrop
        index, rest = drop.message(args, then_space=True)
        lines = parse_size(rest)
        crlf = await self._read_or_report(index)
        if crlf is None:
            drop.stats.top_count += 1
            return
        part = top_of_message(crlf, lines)
        if "oe-ns-eoh" in self.settings.workarounds and b"\r\n\r\n" not in part:
            part = (part if part.endswith(b"\r\n") else part + b"\r\n") + b"\r\n"
        sent = await self._send_body(ok(), part)
        drop.stats.top_count += 1
        drop.stats.top_bytes += sent

    async def cmd_dele(self, args: str) -> None:
        index, _ = self.maildrop.message(args)
        self.maildrop.delete(index)
        await self.conn.send(ok("Marked to be deleted."))

    async def cmd_rset(self, args: str) -> None:
        self.maildrop.reset()
        self.last_accessed = 0
        await self.conn.send(ok())

    async def cmd_last(self, args: str) -> None:
        await self.conn.send(ok(str(self.last_accessed)))

    async def cmd_quit(self, args: str) -> None:
        """RFC 1939 section 6: the UPDATE state."""
        drop = self.maildrop
        try:
            await self.update()
        except (MailboxError, OSError) as exc:
            self.log.error(f"QUIT update failed: {exc}")
            await self.conn.send(err(STORAGE_ERROR))
            raise QuitSession("Storage error during logout.") from exc
        await self.conn.send(ok("Logging out, messages deleted." if drop.deleted else "Logging out."))
        raise QuitSession("Logged out")

    async def update(self) -> None:
        drop = self.maildrop
        settings = self.settings
        seen = drop.seen_uids()
        if seen:
            await self.mailbox.store_flags(seen, [SEEN], "add")
        uids = drop.deleted_uids()
        if not uids:
            return
        if settings.deletes_by_flag:
            await self.mailbox.store_flags(uids, [settings.pop3_deleted_flag], "add")
            self.deleted_count = len(uids)
        else:
            # Messages another session expunged meanwhile are gone either
            # way; Dovecot counts them as deleted too.
            await self.mailbox.remove(uids)
            self.deleted_count = len(uids)


Handler = Callable[[Transaction, str], Awaitable[None]]

COMMANDS: dict[str, Handler] = {
    "CAPA": Transaction.cmd_capa,
    "DELE": Transaction.cmd_dele,
    "LAST": Transaction.cmd_last,
    "LIST": Transaction.cmd_list,
    "NOOP": Transaction.cmd_noop,
    "QUIT": Transaction.cmd_quit,
    "RETR": Transaction.cmd_retr,
    "RSET": Transaction.cmd_rset,
    "STAT": Transaction.cmd_stat,
    "TOP": Transaction.cmd_top,
    "UIDL": Transaction.cmd_uidl,
}
