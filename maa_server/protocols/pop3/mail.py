"""Opening a user's POP3 maildrop after login: INBOX, its snapshot, UIDLs.

As Dovecot's pop3 does on start (src/pop3/pop3-client.c, init_pop3_deleted_
flag(), read_mailbox(), pop3_uidl_assign()): the INBOX is synced, `new/`
moves to `cur/` (the session claims \\Recent) unless pop3_no_flag_updates,
messages carrying pop3_deleted_flag are hidden, and every message gets its
UIDL from dovecot-uidlist's `P` field or pop3_uidl_format.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from maa_server.auth.interface import UserInfo
from maa_server.logs import MailLog
from maa_server.protocols.context import ServerContext
from maa_server.protocols.pop3.lock import Pop3SessionLock, SessionLocked
from maa_server.protocols.pop3.maildrop import Maildrop
from maa_server.protocols.pop3.settings import Pop3Settings
from maa_server.protocols.pop3.uidl import (
    InvalidUidlFormat,
    UidlKeys,
    expand,
    make_unique,
    uses_header_md5,
    validate,
)
from maa_server.storage.interface import Mailbox, MailboxError, MessageInfo

_X_UIDL = re.compile(rb"^X-UIDL:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


class MaildropOpenError(Exception):
    """The mailbox could not be opened; `reply` is the -ERR text.

    Dovecot's pop3 process says `+OK Logged in.` before it opens INBOX, so a
    storage failure comes after it (`after_login`); a refused session lock
    comes instead of it (observed, 2.3.19). `log_reason` is what the
    `Disconnected:` line says, when it differs from the reply."""

    def __init__(self, reply: str, after_login: bool = False, log_reason: str = "") -> None:
        super().__init__(reply)
        self.reply = reply
        self.after_login = after_login
        self.log_reason = log_reason


def internal_error_reply() -> str:
    """MAIL_ERRSTR_CRITICAL_MSG_STAMP with the [SYS/TEMP] code."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"[SYS/TEMP] Internal error occurred. Refer to server log for more information. [{stamp}]"


SaveUidls = Callable[[dict[int, str]], Awaitable[None]]


@dataclass
class OpenedMaildrop:
    mailbox: Mailbox
    maildrop: Maildrop
    save_uidls: SaveUidls | None = None
    lock: Pop3SessionLock | None = None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _header_block(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end >= 0:
            return raw[:end + len(sep) // 2]
    return raw


def _lock_directory(mailbox: Mailbox) -> str | None:
    """Where Dovecot keeps the lock: the INBOX index root, else its mail
    root. The storage exposes these as attributes when it has them."""
    for attribute in ("index_dir", "control_dir", "mail_dir"):
        value = getattr(mailbox, attribute, None)
        if value:
            return str(value)
    return None


async def _compute_uidls(mailbox: Mailbox, messages: list[MessageInfo],
                         settings: Pop3Settings) -> list[str] | None:
    """The UIDL of every message, or None when the template needs `%m`, the
    header MD5 that only Dovecot's mbox storage keeps (observed on Maildir:
    UIDL fails with `Header MD5 not found`)."""
    template = settings.pop3_uidl_format
    needs_md5 = uses_header_md5(template)
    uidvalidity = mailbox.uidvalidity
    uidls = []
    for info in messages:
        if info.pop3_uidl:
            uidls.append(info.pop3_uidl)
            continue
        if settings.pop3_reuse_xuidl:
            head = _header_block(await mailbox.read_message(info.uid))
            match = _X_UIDL.search(head)
            if match and match.group(1).strip():
                uidls.append(match.group(1).strip().decode("utf-8", "replace"))
                continue
        if needs_md5:
            return None
        keys = UidlKeys(uid=info.uid, uidvalidity=uidvalidity, filename=info.guid, guid=info.guid)
        uidls.append(expand(template, keys))
    if settings.pop3_uidl_duplicates == "rename":
        uidls = make_unique(uidls)
    return uidls


async def open_maildrop(ctx: ServerContext, user: UserInfo, username: str,
                        settings: Pop3Settings, log: MailLog) -> OpenedMaildrop:
    try:
        validate(settings.pop3_uidl_format)
    except InvalidUidlFormat as exc:
        log.error(str(exc))
        raise MaildropOpenError("[SYS/TEMP] " + str(exc)) from exc
    try:
        store = await ctx.open_store(user)
        mailbox = await store.open_mailbox("INBOX")
    except (MailboxError, OSError) as exc:
        log.error(f"Couldn't open INBOX: {exc}")
        raise MaildropOpenError(internal_error_reply(), after_login=True,
                                log_reason=f"Couldn't open INBOX: {exc}") from exc

    lock = None
    if settings.pop3_lock_session:
        directory = _lock_directory(mailbox)
        if directory is not None:
            lock = Pop3SessionLock(directory)
            try:
                await lock.acquire()
            except SessionLocked as exc:
                raise MaildropOpenError("[IN-USE] Mailbox is locked by another POP3 session.",
                                        log_reason="Couldn't lock POP3 session") from exc
            except OSError as exc:
                log.error(f"Couldn't create POP3 session lock: {exc}")
                raise MaildropOpenError("[SYS/TEMP] Failed to create POP3 session lock.") from exc

    try:
        await mailbox.sync()
        if not settings.pop3_no_flag_updates and not mailbox.read_only:
            # Claiming \Recent is what moves new/ to cur/ (Dovecot does it on
            # every read-write open; pop3_no_flag_updates opens read-only).
            mailbox.claim_recent()
        messages = list(mailbox.messages())
        if settings.pop3_deleted_flag:
            messages = [m for m in messages if settings.pop3_deleted_flag not in m.flags]
        uidls = await _compute_uidls(mailbox, messages, settings)
    except (MailboxError, OSError) as exc:
        if lock is not None:
            lock.release()
        log.error(f"Couldn't read INBOX: {exc}")
        raise MaildropOpenError(internal_error_reply(), after_login=True,
                                log_reason=f"Couldn't read INBOX: {exc}") from exc

    drop = Maildrop(messages, uidls or [""] * len(messages))
    drop.uidls_unavailable = uidls is None
    save = None
    saver = getattr(mailbox, "save_pop3_uidls", None)
    if settings.pop3_save_uidl and callable(saver):
        save = saver
    return OpenedMaildrop(mailbox, drop, save, lock)
