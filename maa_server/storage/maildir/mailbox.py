"""MaildirMailbox: the shared, async face of one Maildir folder.

One object per (user, folder) in the process, shared by every session.
Blocking work (scans, reads, renames, the uidlist lock) runs in worker
threads, one operation at a time per folder (an asyncio.Lock); the loop only
reads immutable snapshots. In-process changes wake `wait_for_change` at once;
changes by other processes (Dovecot, an LDA) are found by polling the stat
of new/, cur/ and dovecot-uidlist.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import os
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from maa_server.logs import get_log
from maa_server.storage.index.cache import (
    CacheContent,
    append_structures,
    load_cache,
    load_structures,
    rewrite_structures,
    save_cache,
    structs_path,
)
from maa_server.storage.interface import (
    Mailbox,
    MailboxError,
    MessageInfo,
    MessageStructure,
    NoSuchMessage,
    StorageFull,
)
from maa_server.storage.maildir import changes, dotlock, saving
from maa_server.storage.maildir.folder import Folder
from maa_server.storage.maildir.readahead import ReadAhead, read_files

if TYPE_CHECKING:
    from maa_server.storage.maildir.store import MaildirStore

log = get_log("maildir: ")
T = TypeVar("T")
POLL_INTERVAL = 0.5  # seconds between stat checks for other processes' changes
CACHE_WRITE_DELAY = 5.0  # coalesce index cache writes (flushed at shutdown too)
PARSE_AHEAD = 16  # structures parsed per thread hop at most (keeps each hop short)
JOURNAL_VERSIONS = 512  # versions whose changes sessions can ask for (changes_since)


class StorageIOError(MailboxError):
    """A file operation failed (permissions, I/O error): details in the log."""

    code = "SERVERBUG"


class MaildirMailbox(Mailbox):
    def __init__(self, name: str, folder: Folder, store: MaildirStore | None = None,
                 hardlinks: bool = True) -> None:
        self.name = name
        self.version = 0
        self.uidvalidity = 0
        self.read_only = False
        self._folder = folder
        self._store = store
        self._hardlinks = hardlinks
        self._lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()  # one index cache write at a time
        self._event = asyncio.Event()
        self._infos: dict[int, MessageInfo] = {}
        self._snapshot: tuple[MessageInfo, ...] | None = ()
        self._uid_order: tuple[int, ...] | None = ()  # the UIDs ascending (None: to be built)
        self._read_ahead = ReadAhead()
        # (version, UIDs added/changed or None for "everything", UIDs removed)
        self._journal: collections.deque[tuple[int, frozenset[int] | None, frozenset[int]]] = \
            collections.deque(maxlen=JOURNAL_VERSIONS)
        self._pending: tuple[set[int], set[int]] | None = (set(), set())  # for the next version
        self._structures: dict[int, MessageStructure] = {}
        # Structures parsed since the last write of maa-index.structs, and
        # what that file holds (entries, dead ones too; None: rewrite it).
        self._unsaved: dict[int, MessageStructure] = {}
        self._structs_written: int | None = None
        self._structs_validity = 0
        self._save_handle: asyncio.TimerHandle | None = None
        self._saving: asyncio.Task[None] | None = None
        self._opened = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None

    # Opening ---------------------------------------------------------------

    async def open(self) -> None:
        async with self._lock:
            if self._opened:
                return
            await asyncio.to_thread(self._open_blocking)
            self._opened = True
            self._rebuild()

    def _open_blocking(self) -> None:
        folder = self._folder
        if folder.paths.cache_path:
            cache = load_cache(folder.paths.cache_path)
            if cache is not None:
                folder.load_cache_rows(cache.uidvalidity, cache.highest_modseq, cache.next_uid, cache.rows,
                                       cache.extra, cache.extra_names)
                folder.last_tmp_scan = cache.last_tmp_scan
                log_ = load_structures(structs_path(folder.paths.cache_path), cache.uidvalidity)
                self._structures = log_.structures
                self._structs_written = log_.entries if log_.clean else None
                self._structs_validity = cache.uidvalidity
        folder.sync(force=True)
        # No write permission: served read-only, as Dovecot does ([READ-ONLY]).
        self.read_only = not os.access(os.path.join(folder.paths.mail_dir, "cur"), os.W_OK)
        if folder.uidvalidity != folder.uidvalidity_hint:
            self._structures = {}
            self._structs_written = None

    # State -----------------------------------------------------------------

    @property
    def uidnext(self) -> int:
        data = self._folder.uidlist.data
        nxt = data.effective_next_uid if data is not None else 1
        return max(nxt, self._folder.next_uid)

    @property
    def highest_modseq(self) -> int:
        return self._folder.highest_modseq

    @property
    def keywords(self) -> Sequence[str]:
        names = [k for k in self._folder.keywords if k]
        if self._folder.extra_names:
            known = {k.lower() for k in names}
            names += [k for k in self._folder.extra_names if k.lower() not in known]
        return names

    # Where this folder's files are (POP3's dovecot-pop3-session.lock goes to
    # the index directory, which is the mail directory unless INDEX= is set).
    @property
    def mail_dir(self) -> str:
        return self._folder.paths.mail_dir

    @property
    def control_dir(self) -> str:
        return self._folder.paths.control_dir

    @property
    def index_dir(self) -> str:
        cache = self._folder.paths.cache_path
        return os.path.dirname(cache) if cache else self._folder.paths.control_dir

    def messages(self) -> Sequence[MessageInfo]:
        if self._snapshot is None:
            self._snapshot = tuple(self._infos.values())
        return self._snapshot

    def _log_version(self) -> None:
        pending, self._pending = self._pending, (set(), set())
        if pending is None:
            self._journal.append((self.version, None, frozenset()))
        else:
            self._journal.append((self.version, frozenset(pending[0]), frozenset(pending[1])))

    def changes_since(self, version: int) -> tuple[set[int], set[int]] | None:
        if version == self.version:
            return set(), set()
        journal = self._journal
        if not journal or journal[0][0] > version + 1 or version > self.version:
            return None  # older than what we remember
        touched: set[int] = set()
        gone: set[int] = set()
        for ver, added, removed in reversed(journal):
            if ver <= version:
                break
            if added is None:
                return None
            touched |= added
            gone |= removed
        return touched, gone

    def message_uids(self) -> Sequence[int]:
        if self._uid_order is None:
            self._uid_order = tuple(self._infos)
        return self._uid_order

    def get(self, uid: int) -> MessageInfo | None:
        return self._infos.get(uid)

    def recent_count(self) -> int:
        return len(self._folder.new_recent)

    def claim_recent(self) -> frozenset[int]:
        recent = set(self._folder.new_recent)
        self._folder.new_recent.difference_update(recent)
        claimed = frozenset(u for u in recent if u in self._infos)
        if claimed:
            # A read-write SELECT moves new/ to cur/ (spec 5.4); off the loop.
            # Every file in new/ is unclaimed recent, so this catches them all.
            self._background(self._locked(changes.move_new_to_cur, self._folder))
        return claimed

    def _background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(f"{self._folder.paths.mail_dir}: background work failed: {task.exception()!r}")

    def _rebuild(self) -> None:
        self._folder.take_journal()
        self._pending = None
        self.uidvalidity = self._folder.uidvalidity
        self._infos = {uid: rec.info() for uid, rec in self._folder.recs.items()}
        self._snapshot = self._uid_order = None
        for uid in [u for u in self._structures if u not in self._infos]:
            del self._structures[uid]

    def _apply_journal(self) -> bool:
        """Bring the snapshot up to date with what the last operation
        changed, in O(changes). Returns True when anything did."""
        reset, touched, gone = self._folder.take_journal()
        if reset:
            self._rebuild()
            return True
        if not touched and not gone:
            return False
        if self._pending is not None:
            self._pending[0].update(touched)
            self._pending[1].update(gone)
        for uid in gone:
            self._infos.pop(uid, None)
            self._structures.pop(uid, None)
        recs = self._folder.recs
        for uid in sorted(touched):
            rec = recs.get(uid)
            if rec is None:
                continue
            if uid not in self._infos and self._infos and uid < next(reversed(self._infos)):
                self._rebuild()  # an older UID turned up: keep UID order
                return True
            self._infos[uid] = rec.info()
        self._snapshot = self._uid_order = None
        return True

    def _changed(self) -> None:
        self.version += 1
        self._log_version()
        self._event.set()
        self._event = asyncio.Event()
        self._schedule_cache_write()

    # Locked blocking calls ----------------------------------------------------

    async def _locked(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking folder work in a thread, one at a time, then publish
        its changes. A cancelled caller still waits for the thread: the next
        operation must not run beside it."""
        async with self._lock:
            future = asyncio.get_running_loop().run_in_executor(None, functools.partial(func, *args))
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                if not future.done():
                    await asyncio.wait([future])
                raise
            except OSError as exc:
                # Disk full is temporary (4xx for delivery); anything else is
                # logged and told to the client as an internal error.
                if dotlock.errno_is_full(exc):
                    raise StorageFull("Not enough disk space") from exc
                log.error(f"{self._folder.paths.mail_dir}: {exc}")
                raise StorageIOError("Internal error occurred. Refer to server log for more information.") from exc
            finally:
                if self._apply_journal():
                    self._changed()

    async def sync(self) -> None:
        await self._locked(self._folder.sync)

    async def wait_for_change(self, timeout: float) -> bool:
        """Wakes at once on changes made in this process; one poller per
        mailbox (not per session) checks the disk for others' changes every
        POLL_INTERVAL while anyone waits, and syncs when the stats moved, so
        waiters wake only for real changes."""
        event = self._event
        self._waiters += 1
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters -= 1

    async def _poll(self) -> None:
        while self._waiters > 0:
            await asyncio.sleep(POLL_INTERVAL)
            if self._waiters <= 0:
                break
            try:
                if await asyncio.to_thread(self._folder.needs_sync):
                    await self.sync()  # sets the event if anything changed
            except Exception as exc:  # noqa: BLE001 - keep polling; sessions see errors on their own sync
                log.error(f"{self._folder.paths.mail_dir}: sync failed: {exc!r}")

    # Content -----------------------------------------------------------------

    async def read_message(self, uid: int) -> bytes:
        rec = self._folder.recs.get(uid)
        if rec is None or uid not in self._infos:
            raise NoSuchMessage(f"Message UID {uid} was expunged")
        ahead = self._read_ahead.take(uid)
        if ahead is not None:
            return ahead
        order = self.message_uids()
        uids = self._read_ahead.plan(uid, order)
        recs = self._folder.recs
        paths = [self._folder.path(r.subdir, r.name) for r in (recs.get(u) for u in uids) if r is not None]
        if len(paths) != len(uids):
            uids, paths = [uid], paths[:1]
        try:
            contents = await asyncio.to_thread(read_files, paths)
        except OSError as exc:
            log.error(f"{paths[0]}: {exc}")
            raise StorageIOError("Internal error occurred. Refer to server log for more information.") from exc
        self._read_ahead.keep(uids, contents, order)
        if contents[0] is not None:
            return contents[0]
        # Renamed or removed by someone else: resync and look again.
        return await self._locked(self._folder.read, uid)

    async def structure(self, uid: int) -> MessageStructure:
        cached = self._structures.get(uid)
        if cached is not None:
            return cached
        raw = await self.read_message(uid)
        # The following messages already read ahead are parsed in the same
        # thread hop (a first ENVELOPE fetch of a folder walks them all).
        batch = [(uid, raw), *self._read_ahead.take_after(uid, PARSE_AHEAD, self._structures)]
        parsed = await asyncio.to_thread(_parse_all, batch)
        for one, struct in zip(batch, parsed):
            if one[0] in self._infos:
                self._structures[one[0]] = struct
                self._unsaved[one[0]] = struct
        self._folder.dirty = True
        self._schedule_cache_write()
        return parsed[0]

    # Changes -------------------------------------------------------------------

    async def append(self, data: bytes, flags: Iterable[str] = (), internal_date: float | None = None) -> int:
        order = tuple(flags)
        item = saving.Incoming(frozenset(order), data=data, internal_date=internal_date, keyword_order=order)
        uids = await self._locked(saving.save, self._folder, [item], self._hardlinks)
        return int(uids[0])

    async def append_many(self, items: list[tuple[bytes, Iterable[str], float | None]]) -> list[int]:
        """MULTIAPPEND (RFC 3502): all or nothing, one uidlist lock."""
        incoming = []
        for data, flags, when in items:
            order = tuple(flags)
            incoming.append(saving.Incoming(frozenset(order), data=data, internal_date=when, keyword_order=order))
        uids = await self._locked(saving.save, self._folder, incoming, self._hardlinks)
        return list(uids)

    async def store_flags(self, uids: Iterable[int], flags: Iterable[str], mode: str,
                          unchanged_since: int | None = None) -> tuple[list[MessageInfo], list[int]]:
        if mode not in ("set", "add", "remove"):
            raise ValueError(f"bad store mode {mode!r}")
        result: tuple[list[MessageInfo], list[int]] = await self._locked(
            changes.store, self._folder, list(uids), frozenset(flags), mode, unchanged_since)
        return result

    async def save_pop3_uidls(self, uidls: dict[int, str]) -> None:
        """pop3_save_uidl = yes: write the UIDLs shown into dovecot-uidlist."""
        await self._locked(changes.save_pop3_uidls, self._folder, dict(uidls))

    async def expunge(self, uids: Iterable[int] | None = None) -> list[int]:
        wanted = None if uids is None else set(uids)
        targets = [m.uid for m in self.messages() if "\\Deleted" in m.flags and (wanted is None or m.uid in wanted)]
        return await self.remove(targets)

    async def remove(self, uids: Iterable[int]) -> list[int]:
        targets = list(uids)
        if not targets:
            return []
        removed: list[int] = await self._locked(changes.remove, self._folder, targets)
        return removed

    async def copy_to(self, uids: Iterable[int], dest: Mailbox) -> list[tuple[int, int]]:
        sources: list[tuple[int, saving.Incoming]] = []
        for uid in sorted(set(uids)):
            rec = self._folder.recs.get(uid)
            info = self._infos.get(uid)
            if rec is None or info is None:
                continue
            sources.append((uid, saving.Incoming(info.flags, source=self._folder.path(rec.subdir, rec.name),
                                                 source_dir=self._folder.paths.mail_dir,
                                                 keyword_order=tuple(k for k in self._folder.keywords if k))))
        if not sources:
            return []
        if isinstance(dest, MaildirMailbox):
            new_uids = await dest._receive([item for _, item in sources])
        else:
            new_uids = []
            for uid, item in sources:
                new_uids.append(await dest.append(await self.read_message(uid), item.flags, self._infos[uid].internal_date))
        return [(src, new) for (src, _), new in zip(sources, new_uids) if new]

    async def _receive(self, items: list[saving.Incoming]) -> list[int]:
        uids: list[int] = await self._locked(saving.commit, self._folder, items, self._hardlinks)
        return uids

    def detach(self) -> None:
        """The folder was deleted or renamed: stop caching, wake the sessions."""
        self._folder.paths.cache_path = ""
        self._read_ahead.clear()
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        self._pending = None
        self.version += 1
        self._log_version()
        self._event.set()
        self._event = asyncio.Event()

    # Index cache -------------------------------------------------------------

    def _schedule_cache_write(self) -> None:
        if not self._folder.paths.cache_path or self._save_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._save_handle = loop.call_later(CACHE_WRITE_DELAY, self._start_cache_write)

    def _start_cache_write(self) -> None:
        self._save_handle = None
        if self._saving is not None and not self._saving.done():
            self._schedule_cache_write()
            return
        self._saving = asyncio.get_running_loop().create_task(self.flush_cache())
        self._tasks.add(self._saving)
        self._saving.add_done_callback(self._task_done)

    async def flush_cache(self) -> None:
        """Write the index cache now (also called at shutdown)."""
        folder = self._folder
        if not folder.paths.cache_path or not self._opened or not os.path.isdir(folder.paths.mail_dir):
            return
        # Gather under the folder lock (in a thread: O(messages)); write
        # outside it, so that saves and flag changes are not held up.
        rows, extra = await self._locked(lambda: (folder.cache_rows(), folder.cache_extra()))
        content = CacheContent(folder.uidvalidity, folder.highest_modseq, self.uidnext, folder.last_tmp_scan,
                               rows, {}, extra, list(folder.extra_names))
        folder.dirty = False
        # Only the structures parsed since the last write are appended; the
        # file is rewritten when it is new or damaged, or when dead entries
        # (expunged messages) outnumber the live ones.
        new = {uid: s for uid, s in self._unsaved.items() if uid in self._infos}
        written = self._structs_written
        rewrite = (written is None or self._structs_validity != folder.uidvalidity
                   or written + len(new) > 2 * len(self._structures) + 1000)
        live = {uid: s for uid, s in self._structures.items() if uid in self._infos} if rewrite else {}
        self._unsaved = {}
        self._structs_validity = folder.uidvalidity
        spath = structs_path(folder.paths.cache_path)
        async with self._write_lock:
            try:
                await asyncio.to_thread(save_cache, folder.paths.cache_path, content, folder.file_mode)
                if rewrite:
                    await asyncio.to_thread(rewrite_structures, spath, folder.uidvalidity, live, folder.file_mode)
                    self._structs_written = len(live)
                elif new:
                    await asyncio.to_thread(append_structures, spath, folder.uidvalidity, new, folder.file_mode)
                    self._structs_written = (written or 0) + len(new)
            except OSError as exc:
                self._structs_written = None  # start the file afresh next time
                log.warning(f"Cannot write index cache {folder.paths.cache_path}: {exc}")

def _parse_all(batch: list[tuple[int, bytes]]) -> list[MessageStructure]:
    from maa_server.storage.message import parse_structure

    return [parse_structure(raw) for _, raw in batch]


def mailbox_exists(mail_dir: str) -> bool:
    return os.path.isdir(os.path.join(mail_dir, "cur")) or os.path.isdir(os.path.join(mail_dir, "new"))
