"""MaildirStore: one user's Maildir folders (the private inbox namespace).

Dovecot source: src/lib-storage/index/maildir/maildir-storage.c (create),
src/lib-storage/list/ (list, delete, rename, subscriptions). Spec 2.5, 5.1,
5.8, 5.9. Folder-level changes are serialised per store; the blocking parts
run in worker threads.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from maa_server.logs import get_log
from maa_server.storage.interface import (
    InvalidMailboxName,
    MailboxEntry,
    MailboxError,
    MailboxExists,
    MailStore,
    NoSuchMailbox,
    StorageFull,
)
from maa_server.storage.location import MailLocation
from maa_server.storage.maildir import dotlock
from maa_server.storage.maildir.folder import Folder
from maa_server.storage.maildir.layout import TRASHED, Layout
from maa_server.storage.maildir.mailbox import MaildirMailbox, StorageIOError
from maa_server.storage.maildir.subscriptions import (
    format_subscriptions,
    parse_subscriptions,
)
from maa_server.storage.maildir.uidlist import UidList, generate_guid
from maa_server.storage.maildir.uidlist_file import UidListFile
from maa_server.storage.maildir.uidvalidity import allocate_uidvalidity

Levels = tuple[str, ...]
T = TypeVar("T")
log = get_log("maildir: ")


@dataclass(frozen=True, slots=True)
class AutoMailbox:
    """A `mailbox NAME { special_use = ..., auto = ... }` block (spec 2.5)."""

    name: str
    special_use: frozenset[str] = frozenset()
    auto: str = "no"  # "no", "create", "subscribe"


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """Blocking folder-list work off the loop; OS errors become MailboxErrors
    (disk full: temporary) so that clients get a NO, never a crash."""
    try:
        return await asyncio.to_thread(func, *args)
    except OSError as exc:
        if dotlock.errno_is_full(exc):
            raise StorageFull("Not enough disk space") from exc
        log.error(f"{getattr(func, '__name__', 'storage')}: {exc}")
        raise StorageIOError("Internal error occurred. Refer to server log for more information.") from exc


class MailboxHasChildren(MailboxError):
    code = "INUSE"


class MaildirStore(MailStore):
    def __init__(self, user: str, location: MailLocation, separator: str | None = None,
                 fsync: str = "optimized", hardlinks: bool = True,
                 auto_mailboxes: Iterable[AutoMailbox] = (), tmp_scan_interval: float = 7 * 86400,
                 max_lock_timeout: float = 0) -> None:
        self.user = user
        self.location = location
        self.layout = Layout(location, separator)
        self.separator = self.layout.separator
        self.fsync = fsync
        self.hardlinks = hardlinks
        self.tmp_scan_interval = tmp_scan_interval
        self.max_lock_timeout = max_lock_timeout
        self.auto: dict[Levels, AutoMailbox] = {}
        for box in auto_mailboxes:
            try:
                self.auto[self.layout.split(box.name)] = box
            except InvalidMailboxName:
                continue
        self._boxes: dict[Levels, MaildirMailbox] = {}
        self._opening: dict[Levels, asyncio.Future[MaildirMailbox]] = {}
        self._lock = asyncio.Lock()
        self.dir_mode, self.file_mode = 0o700, 0o600

    # Setup -------------------------------------------------------------------

    async def prepare(self) -> None:
        """Create the root and INBOX (Dovecot autocreates INBOX at login)."""
        await _in_thread(self._prepare_blocking)

    def _prepare_blocking(self) -> None:
        root = self.location.root
        os.makedirs(root, mode=0o700, exist_ok=True)
        self.dir_mode = os.stat(root).st_mode & 0o777 or 0o700
        self.file_mode = self.dir_mode & 0o666
        inbox = self.layout.mail_dir(("INBOX",))
        if not os.path.isdir(os.path.join(inbox, "cur")):
            self._create_blocking(("INBOX",))

    # Folder creation / removal (blocking) -------------------------------------

    def _exists(self, levels: Levels) -> bool:
        mail_dir = self.layout.mail_dir(levels)
        if self.layout.fs or self.layout.is_inbox(levels):
            return os.path.isdir(os.path.join(mail_dir, "cur"))
        return os.path.isdir(mail_dir)

    def _create_blocking(self, levels: Levels) -> None:
        """mkdir + cur/new/tmp (+ maildirfolder on Maildir++) and a header-only
        dovecot-uidlist with a fresh UIDVALIDITY, as Dovecot does (spec 5.1)."""
        mail_dir = self.layout.mail_dir(levels)
        os.makedirs(mail_dir, mode=self.dir_mode, exist_ok=True)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(mail_dir, sub), mode=self.dir_mode, exist_ok=True)
        if not self.layout.fs and not self.layout.is_inbox(levels):
            # With the mailbox files' mode (0600 under a 0700 home), as Dovecot.
            os.close(os.open(os.path.join(mail_dir, "maildirfolder"),
                             os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.file_mode))
        control = self.layout.control_dir(levels)
        os.makedirs(control, mode=self.dir_mode, exist_ok=True)
        uidlist = UidListFile(control, self.fsync)
        if os.path.exists(uidlist.path):
            return
        lock = dotlock.acquire(uidlist.lock_path, uidlist.path, mode=self.file_mode)
        assert lock is not None  # blocking acquire: a lock or LockTimeout
        with lock:
            if os.path.exists(uidlist.path):
                return
            uidlist.data = UidList(uidvalidity=allocate_uidvalidity(self.layout.root_control_dir),
                                   next_uid=1, guid=generate_guid())
            uidlist.rewrite(self.file_mode)

    def _children(self, levels: Levels) -> list[Levels]:
        n = len(levels)
        return [f.levels for f in self.layout.list_folders() if len(f.levels) > n and f.levels[:n] == levels]

    def _trash(self, path: str) -> None:
        """Rename out of sight, then remove (Dovecot's .DOVECOT-TRASHED)."""
        if not os.path.exists(path):
            return
        trash = os.path.join(os.path.dirname(path) if self.layout.fs else self.location.root,
                             f".{TRASHED}.{os.getpid()}")
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _delete_blocking(self, levels: Levels) -> None:
        if self.layout.is_inbox(levels):
            raise MailboxError("INBOX can't be deleted.")
        mail_dir = self.layout.mail_dir(levels)
        if not os.path.isdir(mail_dir):
            raise NoSuchMailbox(f"Mailbox doesn't exist: {self.layout.join(levels)}")
        children = self._children(levels) if self.layout.fs else []
        selectable = self._exists(levels)
        if children and not selectable:
            raise MailboxHasChildren("Mailbox has children, delete them first")
        side_dirs = [d for d in (self.layout.control_dir(levels), self.layout.index_dir(levels))
                     if d and d != mail_dir]
        if children:
            # RFC 3501 6.3.4: keep the name as \Noselect, drop the messages.
            for entry in os.listdir(mail_dir):
                path = os.path.join(mail_dir, entry)
                if os.path.isdir(path) and entry not in ("cur", "new", "tmp"):
                    continue
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
        else:
            self._trash(mail_dir)
        for side in side_dirs:
            for name in ("dovecot-uidlist", "dovecot-keywords", "maa-index.cache", "maa-index.structs"):
                try:
                    os.unlink(os.path.join(side, name))
                except (FileNotFoundError, NotADirectoryError):
                    pass

    def _rename_blocking(self, old: Levels, new: Levels) -> None:
        if not self._exists(old) and not os.path.isdir(self.layout.mail_dir(old)):
            raise NoSuchMailbox(f"Mailbox doesn't exist: {self.layout.join(old)}")
        if self.layout.is_inbox(new) or os.path.exists(self.layout.mail_dir(new)):
            raise MailboxExists("Target mailbox already exists")
        if new[: len(old)] == old:
            raise InvalidMailboxName("Can't rename mailbox under itself")
        if self.layout.is_inbox(old):
            self._rename_inbox(new)
            return
        moves = [(old, new)]
        if not self.layout.fs:
            # Maildir++: every child is its own directory (spec 5.1).
            moves += [(child, new + child[len(old):]) for child in self._children(old)]
        for src, dst in moves:
            pairs = [(self.layout.mail_dir(src), self.layout.mail_dir(dst))]
            for side in (self.layout.control_dir, self.layout.index_dir):
                s, d = side(src), side(dst)
                if s and s != pairs[0][0] and os.path.isdir(s):
                    pairs.append((s, d))
            for s, d in pairs:
                os.makedirs(os.path.dirname(d), mode=self.dir_mode, exist_ok=True)
                os.rename(s, d)

    def _rename_inbox(self, new: Levels) -> None:
        """RFC 3501 6.3.5: RENAME INBOX moves its messages into a new folder
        and leaves INBOX empty."""
        self._create_blocking(new)
        src, dst = self.layout.mail_dir(("INBOX",)), self.layout.mail_dir(new)
        for sub in ("new", "cur"):
            for name in os.listdir(os.path.join(src, sub)):
                if name.startswith("."):
                    continue
                try:
                    os.rename(os.path.join(src, sub, name), os.path.join(dst, sub, name))
                except FileNotFoundError:
                    continue

    # MailStore ---------------------------------------------------------------

    async def list_mailboxes(self) -> list[MailboxEntry]:
        folders = await _in_thread(self.layout.list_folders)
        subscribed = set(await self.subscriptions())
        selectable: dict[Levels, bool] = {("INBOX",): True}
        for folder in folders:
            selectable[folder.levels] = folder.selectable
        for levels, box in self.auto.items():
            if box.auto != "no":
                selectable[levels] = True
        names = set(selectable)
        for levels in list(names):
            for i in range(1, len(levels)):
                if levels[:i] not in selectable:
                    selectable[levels[:i]] = False  # implied parent: \Noselect
        parents = {levels[:i] for levels in selectable for i in range(1, len(levels))}
        entries: list[MailboxEntry] = []
        for levels in sorted(selectable, key=lambda lv: (lv != ("INBOX",), lv)):
            attrs = {"\\HasChildren" if levels in parents else "\\HasNoChildren"}
            if not selectable[levels]:
                attrs.add("\\Noselect")
            name = self.layout.join(levels)
            auto = self.auto.get(levels)
            entries.append(MailboxEntry(name, frozenset(attrs), auto.special_use if auto else frozenset(),
                                        name in subscribed))
        return entries

    async def create_mailbox(self, name: str, special_use: Iterable[str] = ()) -> None:
        levels = self.layout.split(name)
        async with self._lock:
            if self.layout.is_inbox(levels) or await _in_thread(self._exists, levels):
                raise MailboxExists("Mailbox already exists")
            await _in_thread(self._create_blocking, levels)

    async def delete_mailbox(self, name: str) -> None:
        levels = self.layout.split(name)
        async with self._lock:
            await _in_thread(self._delete_blocking, levels)
            self._forget(levels)

    async def rename_mailbox(self, old: str, new: str) -> None:
        old_levels, new_levels = self.layout.split(old), self.layout.split(new)
        async with self._lock:
            await _in_thread(self._rename_blocking, old_levels, new_levels)
            self._forget(old_levels)
            self._forget(new_levels)

    def _forget(self, levels: Levels) -> None:
        for key in [k for k in self._boxes if k[: len(levels)] == levels]:
            box = self._boxes.pop(key)
            box.detach()  # sessions still holding it see it emptied at their next sync

    # Subscriptions -------------------------------------------------------------

    def _subscriptions_path(self) -> str:
        return os.path.join(self.layout.root_control_dir, self.location.subscriptions_file)

    def _read_subscriptions(self) -> list[list[str]]:
        try:
            with open(self._subscriptions_path(), "rb") as fh:
                return parse_subscriptions(fh.read(), self.layout.disk_separator)
        except FileNotFoundError:
            return []

    async def subscriptions(self) -> list[str]:
        stored = await _in_thread(self._read_subscriptions)
        names: list[str] = []
        for stored_levels in stored:
            name = self.layout.join(self.layout.levels_from_storage(stored_levels))
            if name not in names:
                names.append(name)
        for levels, box in self.auto.items():
            name = self.layout.join(levels)
            if box.auto == "subscribe" and name not in names:
                names.append(name)
        return names

    def _update_subscriptions(self, stored: list[str], add: bool) -> None:
        path = self._subscriptions_path()
        current = self._read_subscriptions()
        rest = [levels for levels in current if levels != stored]
        if add:
            rest.append(stored)
        if rest == current:
            return
        os.makedirs(os.path.dirname(path), mode=self.dir_mode, exist_ok=True)
        dotlock.write_replace(path, path + ".lock", format_subscriptions(rest), stale_timeout=30.0,
                              timeout=120.0, mode=self.file_mode, fsync=self.fsync != "never")

    async def subscribe(self, name: str) -> None:
        levels = self.layout.split(name)
        async with self._lock:
            await _in_thread(self._update_subscriptions, self.layout.storage_levels(levels), True)

    async def unsubscribe(self, name: str) -> None:
        levels = self.layout.split(name)
        async with self._lock:
            await _in_thread(self._update_subscriptions, self.layout.storage_levels(levels), False)

    # Opening -------------------------------------------------------------------

    async def open_mailbox(self, name: str) -> MaildirMailbox:
        levels = self.layout.split(name)
        box = self._boxes.get(levels)
        if box is not None:
            return box
        pending = self._opening.get(levels)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[MaildirMailbox] = asyncio.get_running_loop().create_future()
        self._opening[levels] = future
        try:
            box = await self._open(levels)
            future.set_result(box)
            return box
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            del self._opening[levels]

    async def _open(self, levels: Levels) -> MaildirMailbox:
        if not await _in_thread(self._exists, levels):
            auto = self.auto.get(levels)
            if self.layout.is_inbox(levels) or (auto is not None and auto.auto != "no"):
                # INBOX and auto=create/subscribe mailboxes appear on first use.
                async with self._lock:
                    if not await _in_thread(self._exists, levels):
                        await _in_thread(self._create_blocking, levels)
            else:
                raise NoSuchMailbox(f"Mailbox doesn't exist: {self.layout.join(levels)}")
        folder = Folder(self.layout.folder_paths(levels), self.fsync, self.file_mode,
                        self.tmp_scan_interval, self.max_lock_timeout)
        box = MaildirMailbox(self.layout.join(levels), folder, self, self.hardlinks)
        await box.open()
        self._boxes[levels] = box
        return box

    async def close(self) -> None:
        """Write the index caches (at shutdown)."""
        for box in list(self._boxes.values()):
            await box.flush_cache()
