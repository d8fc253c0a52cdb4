"""One Maildir folder's state and its blocking operations (sync, save, flag
renames, unlink). The async `MaildirMailbox` runs these in worker threads,
one at a time per folder.

Dovecot source: src/lib-storage/index/maildir/maildir-sync.c, maildir-save.c,
maildir-uidlist.c. Spec sections 5.2-5.7 and 5.12.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from maa_server.logs import get_log
from maa_server.storage.interface import MessageInfo, NoSuchMessage
from maa_server.storage.maildir import dotlock
from maa_server.storage.maildir.filename import (
    letters_to_flags,
    parse_name,
    sort_key,
    split_info,
    virtual_size,
)
from maa_server.storage.maildir.keywords import (
    add_keywords,
    format_keywords,
    parse_keywords,
)
from maa_server.storage.maildir.listing import DirListing
from maa_server.storage.maildir.uidlist import (
    UidList,
    UidListCorrupt,
    UidRecord,
    generate_guid,
)
from maa_server.storage.maildir.uidlist_file import FileStamp, UidListFile, stamp_of
from maa_server.storage.maildir.uidvalidity import allocate_uidvalidity

log = get_log("maildir: ")
TMP_MAX_AGE = 36 * 3600  # maildir-sync.c: tmp/ files older than this go


@dataclass(slots=True)
class Rec:
    """A message of the folder: where its file is and what we know of it."""

    uid: int
    base: str
    subdir: str  # "new" or "cur"
    name: str  # the full current file name
    flags: frozenset[str]
    unknown: str  # flag letters we do not understand (kept on rename)
    tail: str  # further ",..." info groups (kept)
    mtime: float
    size: int
    vsize: int
    modseq: int
    pop3_uidl: str = ""
    # Keywords past the 26 letters of dovecot-keywords: like Dovecot, kept
    # only in our index (other readers of the Maildir do not see them).
    extra: frozenset[str] = frozenset()

    @property
    def all_flags(self) -> frozenset[str]:
        return self.flags | self.extra if self.extra else self.flags

    def info(self) -> MessageInfo:
        return MessageInfo(self.uid, self.all_flags, self.mtime, self.vsize, self.modseq, self.base, self.pop3_uidl)


@dataclass(slots=True)
class FolderPaths:
    mail_dir: str
    control_dir: str
    cache_path: str  # "" = no index cache (INDEX=MEMORY)
    root_control_dir: str  # where dovecot-uidvalidity lives


def _uidl_of(rec: UidRecord) -> str:
    if "P" not in rec.ext:
        return ""
    return rec.ext["P"] or rec.base


class Folder:
    """The blocking engine; not thread-safe (the mailbox serialises calls)."""

    def __init__(self, paths: FolderPaths, fsync: str = "optimized", file_mode: int = 0o600,
                 tmp_scan_interval: float = 7 * 86400, max_lock_timeout: float = 0) -> None:
        self.paths = paths
        self.fsync = fsync
        self.file_mode = file_mode
        self.tmp_scan_interval = tmp_scan_interval  # mail_temp_scan_interval
        # mail_max_lock_timeout caps the 122 s wait when non-zero (spec 2.10).
        self.lock_timeout = min(122.0, max_lock_timeout) if max_lock_timeout > 0 else 122.0
        self.uidlist = UidListFile(paths.control_dir, fsync)
        self.keywords: list[str] = []
        self._letters_memo: dict[str, tuple[frozenset[str], str]] = {}
        self._keywords_stamp: FileStamp | None = None
        self.recs: dict[int, Rec] = {}  # uid -> rec, ascending UID order
        self.by_base: dict[str, int] = {}
        self.uidvalidity = 0
        self.highest_modseq = 1
        self._pass_modseq = 0  # the modseq of the current sync pass (sync_modseq)
        self._pass_recs: list[Rec] = []  # the records stamped with it
        self._index_keywords: set[str] = set()  # keywords our index has met on a message
        self.next_uid = 1
        self.new_recent: set[int] = set()  # uids found or saved since the last claim
        self._dir_stamps: tuple[FileStamp | None, FileStamp | None] = (None, None)
        self.listing = DirListing()
        self._cached: dict[str, tuple[int, str, float, int, int, int]] = {}  # base -> cache row
        self._cached_extra: dict[int, tuple[str, ...]] = {}
        self.extra_names: list[str] = []  # keywords with no letter, first use order
        self.last_tmp_scan = 0.0
        self.dirty = False  # the index cache needs writing
        self._last_scan = 0.0
        # What changed since the mailbox last looked, so that it can update
        # its snapshot in O(changes) rather than O(messages).
        self.touched: set[int] = set()  # UIDs added or changed
        self.gone: set[int] = set()  # UIDs removed
        self.reset = False  # everything may have changed
        self.uidvalidity_hint = 0  # UIDVALIDITY the index cache was written for
        # Without a cache only files in new/ are \Recent (as Dovecot without
        # its index); with one, also every UID above those it knew.
        self._baseline_known = False

    def take_journal(self) -> tuple[bool, set[int], set[int]]:
        result = (self.reset, self.touched, self.gone)
        self.reset, self.touched, self.gone = False, set(), set()
        return result

    # Paths -----------------------------------------------------------------

    def path(self, subdir: str, name: str) -> str:
        return os.path.join(self.paths.mail_dir, subdir, name)

    def needs_sync(self) -> bool:
        """Cheap check (three stats) whether another writer may have changed
        the folder since our last sync."""
        dirs = (stamp_of(os.path.join(self.paths.mail_dir, "new")),
                stamp_of(os.path.join(self.paths.mail_dir, "cur")))
        # A change in the same clock tick as our last scan leaves the mtime
        # as it was: while the directories changed within a second before
        # that scan, look again (Dovecot's same-second rule, maildir-sync.c).
        racy = any(s is not None and s.mtime_ns / 1e9 >= self._last_scan - 1 for s in dirs)
        return (racy or dirs != self._dir_stamps or self.uidlist.changed()
                or stamp_of(self._keywords_path()) != self._keywords_stamp)

    def sync_dir(self, subdir: str) -> None:
        if self.fsync == "never":
            return
        fd = os.open(os.path.join(self.paths.mail_dir, subdir), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # Locks -----------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        lock = dotlock.acquire(self.uidlist.lock_path, self.uidlist.path, stale_timeout=120.0,
                               timeout=self.lock_timeout,
                               mode=self.file_mode)
        assert lock is not None
        try:
            yield
        finally:
            lock.release()

    # Keywords --------------------------------------------------------------

    def _keywords_path(self) -> str:
        return os.path.join(self.paths.control_dir, "dovecot-keywords")

    def refresh_keywords(self) -> bool:
        path = self._keywords_path()
        stamp = stamp_of(path)
        if stamp == self._keywords_stamp:
            return False
        self._keywords_stamp = stamp
        try:
            with open(path, "rb") as fh:
                self.keywords = parse_keywords(fh.read())
        except FileNotFoundError:
            self.keywords = []
        self._letters_memo = {}
        return True

    def ensure_keywords(self, names: Iterable[str]) -> None:
        """Add keywords to dovecot-keywords; caller holds the uidlist lock."""
        self.refresh_keywords()
        slots, changed = add_keywords(self.keywords, [n for n in names if not n.startswith("\\")])
        if not changed:
            return
        path = self._keywords_path()
        dotlock.write_replace(path, path + ".lock", format_keywords(slots), stale_timeout=120.0,
                              timeout=122.0, mode=self.file_mode, fsync=self.fsync != "never")
        # Readers notice changes by mtime: make sure it moves (maildir-keywords.c).
        old = self._keywords_stamp
        st = os.stat(path)
        if old is not None and st.st_mtime_ns <= old.mtime_ns:
            bumped = old.mtime_ns + 1_000_000_000
            os.utime(path, ns=(bumped, bumped))
        self.keywords = slots
        self._letters_memo = {}
        self._keywords_stamp = stamp_of(path)

    # Scanning ---------------------------------------------------------------

    def scan(self) -> dict[str, tuple[str, str]]:
        """base -> (subdir, name) of every message file in new/ and cur/
        (the listing's own dict: read it, do not change it). Which bases
        moved since the previous scan is in `self.listing.changes`."""
        return self.listing.scan(self.paths.mail_dir)

    def _flags_of(self, letters: str) -> tuple[frozenset[str], str]:
        # Few distinct letter sets exist in a folder: memoise (reset when
        # dovecot-keywords changes).
        found = self._letters_memo.get(letters)
        if found is None:
            found = letters_to_flags(letters, self.keywords)
            self._letters_memo[letters] = found
        return found

    def sync_modseq(self) -> int:
        """The modseq of a change found by this sync pass. Dovecot gives all
        changes of one index transaction the same modseq (a first sync of N
        messages: all 2, HIGHESTMODSEQ 2; mail-index-modseq.c), and clients
        compare modseqs with Dovecot's, so one pass = one modseq."""
        if not self._pass_modseq or self._pass_modseq != self.highest_modseq:
            self.highest_modseq += 1
            self._pass_modseq = self.highest_modseq
        return self._pass_modseq

    def note_keywords(self, flags: Iterable[str]) -> None:
        """Keywords set by our own STORE/APPEND: known to the index from now
        on, without a modseq of their own (observed: a new keyword by STORE
        moves HIGHESTMODSEQ by one, like any STORE)."""
        self._index_keywords.update(f for f in flags if not f.startswith("\\"))

    def _stamp(self, rec: Rec, flags: frozenset[str]) -> None:
        """Give rec this pass's modseq. A keyword the index meets for the
        first time costs Dovecot an index transaction of its own before the
        sync's: HIGHESTMODSEQ moves one further per new keyword and every
        record of the pass takes the final value (observed: a fresh Maildir
        using two keywords is all MODSEQ 4, with none MODSEQ 2)."""
        new = [f for f in flags if not f.startswith("\\") and f not in self._index_keywords]
        modseq = self.sync_modseq()
        if new:
            self._index_keywords.update(new)
            self.highest_modseq += len(new)
            modseq = self._pass_modseq = self.highest_modseq
            for earlier in self._pass_recs:
                earlier.modseq = modseq
        rec.modseq = modseq
        self._pass_recs.append(rec)

    def _start_pass(self) -> None:
        self._pass_modseq = 0
        self._pass_recs = []

    def _make_rec(self, uid: int, base: str, subdir: str, name: str, urec: UidRecord | None) -> Rec | None:
        letters, tail = split_info(name)
        flags, unknown = self._flags_of(letters)
        cached = self._cached.get(base)
        if cached is not None and cached[0] == uid:
            _, _, mtime, size, cached_vsize, modseq = cached
            rec = Rec(uid, base, subdir, name, flags, unknown, tail, mtime, size, cached_vsize, modseq,
                      extra=frozenset(self._cached_extra.get(uid, ())))
            if cached[1] != name:
                # Renamed by someone else while we were away: a flag change.
                self._stamp(rec, flags)
            else:
                self.note_keywords(flags)
        else:
            path = self.path(subdir, name)
            parsed = parse_name(name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            size = parsed.size if parsed.size is not None else st.st_size
            vsize: int | None = parsed.vsize
            if vsize is None and urec is not None and urec.ext.get("W", "").isdigit():
                vsize = int(urec.ext["W"])
            if vsize is None:
                try:
                    with open(path, "rb") as fh:
                        vsize = virtual_size(fh.read())
                except FileNotFoundError:
                    return None
            rec = Rec(uid, base, subdir, name, flags, unknown, tail, st.st_mtime, size, vsize, 0)
            self._stamp(rec, flags)
        if urec is not None:
            rec.pop3_uidl = _uidl_of(urec)
        return rec

    # Sync ------------------------------------------------------------------

    def create_uidlist(self, keep_uidvalidity: bool) -> UidList:
        """Under the lock: a fresh header (new folder, or a broken file)."""
        # Dovecot keeps UIDVALIDITY from its index when the uidlist is lost
        # (spec 5.11); ours is the index cache's or the one we had.
        uidvalidity = (self.uidvalidity or self.uidvalidity_hint) if keep_uidvalidity else 0
        if not uidvalidity:
            uidvalidity = allocate_uidvalidity(self.paths.root_control_dir)
        data = UidList(uidvalidity=uidvalidity, next_uid=max(self.next_uid, 1), guid=generate_guid())
        self.uidlist.data = data
        os.makedirs(self.paths.control_dir, exist_ok=True)
        self.uidlist.rewrite(self.file_mode)
        return data

    def ensure_uidlist(self) -> bool:
        """Read (or create, or rebuild) the uidlist; True when it changed."""
        try:
            if self.uidlist.refresh() is False and self.uidlist.data is not None:
                return False
            if self.uidlist.data is not None:
                return True
        except UidListCorrupt as exc:
            log.error(f"Broken file {self.uidlist.path}: {exc} - rebuilding")
        with self.locked():
            try:
                self.uidlist.refresh()
            except UidListCorrupt:
                self.uidlist.data = None
                try:
                    os.unlink(self.uidlist.path)
                except FileNotFoundError:
                    pass
                # Dovecot keeps UIDVALIDITY from its index when it has one.
                self.create_uidlist(keep_uidvalidity=True)
            if self.uidlist.data is None:
                self.create_uidlist(keep_uidvalidity=True)
        return True

    def sync(self, force: bool = False) -> bool:
        """Bring recs in line with the disk. Returns True when anything changed."""
        self._start_pass()
        if not os.path.isdir(self.paths.mail_dir):
            # Deleted (or renamed) under us: it has no messages any more.
            if not self.recs:
                return False
            self.recs.clear()
            self.by_base.clear()
            self.highest_modseq += 1
            self.reset = True
            return True
        uidlist_changed = self.ensure_uidlist()
        kw_changed = self.refresh_keywords()
        data = self.uidlist.data
        assert data is not None
        changed = False
        if data.uidvalidity != self.uidvalidity:
            if self.uidvalidity:
                log.warning(f"UIDVALIDITY changed ({self.uidvalidity} -> {data.uidvalidity}) in {self.paths.mail_dir}")
            if self.uidvalidity or self.uidvalidity_hint != data.uidvalidity:
                self._cached = {}
                self._baseline_known = False
                self.next_uid = 1
            self.recs.clear()
            self.by_base.clear()
            self.uidvalidity = data.uidvalidity
            self.reset = True
            changed = True
        dirs = (stamp_of(os.path.join(self.paths.mail_dir, "new")),
                stamp_of(os.path.join(self.paths.mail_dir, "cur")))
        # The same-second race: a change within the second of our last scan
        # may not move the mtime, so rescan while the stamp is that fresh.
        fresh = any(s is not None and s.mtime_ns / 1e9 >= self._last_scan - 1 for s in dirs)
        if not force and not kw_changed and not changed and not uidlist_changed \
                and dirs == self._dir_stamps and not fresh:
            return False
        try:
            changed |= self._scan_and_reconcile(data, kw_changed, force or changed or uidlist_changed)
        except BaseException:
            self.listing.forget()  # what this sync missed must be seen by the next one
            raise
        self._dir_stamps = dirs
        if self.tmp_scan_interval > 0 and time.time() - self.last_tmp_scan > self.tmp_scan_interval:
            self.clean_tmp()
        self._baseline_known = True
        return changed

    def _scan_and_reconcile(self, data: UidList, kw_changed: bool, full: bool) -> bool:
        """Rescan and bring recs in line. Unless `full` (or the listing was
        rebuilt), only the bases whose files came or went since the last
        scan are looked at: everything else matched the last time, and the
        uidlist and keywords did not change since (our own changes keep recs
        and the uidlist in step as they are made)."""
        files = self.scan()
        self._last_scan = time.time()
        only = None if full or kw_changed else self.listing.changes
        if only is None:
            missing = any(rec.base not in files for rec in self.recs.values())
        else:
            missing = any(base not in files and base in self.by_base for base in only)
        if missing:
            # A file renamed new/ -> cur/ between our two listdirs: look again.
            files = self.scan()
            if only is not None and self.listing.changes is not None:
                only = only | self.listing.changes
            else:
                only = None
        changed = self._reconcile(files, data, kw_changed, only)
        if only is not None and len(self.recs) != len(files):
            # Files we saved since the last scan are in recs but were never
            # listed: if one went again, only a full pass can tell.
            only = None
            changed |= self._reconcile(files, data, kw_changed)
        candidates = files if only is None else [base for base in only if base in files]
        if any(base not in data.records for base in candidates):
            changed |= self._assign_uids(files)
        return changed

    def _reconcile(self, files: dict[str, tuple[str, str]], data: UidList, kw_changed: bool,
                   only: set[str] | None = None) -> bool:
        """Match recs to the files and the uidlist; `only`: just these bases."""
        changed = False
        if only is None:
            stale = [uid for uid, rec in self.recs.items()
                     if rec.base not in files or data.records.get(rec.base, None) is None
                     or data.records[rec.base].uid != uid]
            items: Iterable[tuple[str, tuple[str, str]]] = files.items()
        else:
            stale = []
            for base in only:
                known = self.by_base.get(base)
                if known is not None and (base not in files or data.records.get(base, None) is None
                                          or data.records[base].uid != known):
                    stale.append(known)
            items = [(base, files[base]) for base in only if base in files]
        for uid in stale:
            rec = self.recs.pop(uid, None)
            if rec is None:
                continue
            self.by_base.pop(rec.base, None)
            self.sync_modseq()
            self.gone.add(uid)
            changed = True
        additions: list[Rec] = []
        for base, (subdir, name) in items:
            urec = data.records.get(base)
            if urec is None:
                continue
            known = self.by_base.get(base)
            if known is None:
                made = self._make_rec(urec.uid, base, subdir, name, urec)
                if made is not None:
                    additions.append(made)
                continue
            uid = known
            rec = self.recs[uid]
            uidl = _uidl_of(urec)
            if uidl != rec.pop3_uidl:
                rec.pop3_uidl = uidl
                self.touched.add(uid)
                changed = True
            if rec.name != name or rec.subdir != subdir or kw_changed:
                letters, tail = split_info(name)
                flags, unknown = self._flags_of(letters)
                if flags != rec.flags:
                    self._stamp(rec, flags)
                    self.touched.add(uid)
                    changed = True
                rec.subdir, rec.name, rec.flags, rec.unknown, rec.tail = subdir, name, flags, unknown, tail
        if additions:
            self.insert(additions)
            changed = True
        if changed:
            self.dirty = True
        return changed

    def insert(self, recs: list[Rec]) -> None:
        recs.sort(key=lambda r: r.uid)
        if self.recs and recs[0].uid < next(reversed(self.recs)):
            merged = sorted([*self.recs.values(), *recs], key=lambda r: r.uid)
            self.recs = {r.uid: r for r in merged}
            self.reset = True
        else:
            for rec in recs:
                self.recs[rec.uid] = rec
        self.touched.update(rec.uid for rec in recs)
        for rec in recs:
            self.by_base[rec.base] = rec.uid
            if rec.subdir == "new" or (self._baseline_known and rec.uid >= self.next_uid):
                self.new_recent.add(rec.uid)
        self.next_uid = max(self.next_uid, recs[-1].uid + 1)

    def _assign_uids(self, files: dict[str, tuple[str, str]]) -> bool:
        """Files no uidlist line names yet (an LDA, a crashed saver) get UIDs in
        Dovecot's order: time stamp, microseconds, name (spec 5.5)."""
        self._start_pass()
        with self.locked():
            self.uidlist.refresh()
            data = self.uidlist.data
            assert data is not None
            files = self.scan()
            self._reconcile(files, data, False)
            unknown = sorted((b for b in files if b not in data.records), key=sort_key)
            if not unknown:
                return True
            new_records: list[UidRecord] = []
            uid = max(data.effective_next_uid, self.next_uid)
            for base in unknown:
                new_records.append(UidRecord(uid, base, {}))
                uid += 1
            self.uidlist.append(new_records, self.file_mode)
            additions = []
            for urec in new_records:
                subdir, name = files[urec.base]
                rec = self._make_rec(urec.uid, urec.base, subdir, name, urec)
                if rec is not None:
                    additions.append(rec)
            if additions:
                self.insert(additions)
                for rec in additions:
                    self.new_recent.add(rec.uid)
            self.dirty = True
        return True

    def clean_tmp(self) -> None:
        """tmp/ files whose ctime is older than 36 hours (maildir-sync.c)."""
        self.last_tmp_scan = time.time()
        limit = time.time() - TMP_MAX_AGE
        try:
            with os.scandir(os.path.join(self.paths.mail_dir, "tmp")) as it:
                for entry in it:
                    try:
                        if entry.is_file(follow_symlinks=False) and entry.stat().st_ctime < limit:
                            os.unlink(entry.path)
                    except FileNotFoundError:
                        continue
        except FileNotFoundError:
            pass
        self.dirty = True

    # Reading ---------------------------------------------------------------

    def read(self, uid: int) -> bytes:
        for attempt in range(2):
            rec = self.recs.get(uid)
            if rec is None:
                break
            try:
                with open(self.path(rec.subdir, rec.name), "rb") as fh:
                    return fh.read()
            except FileNotFoundError:
                if attempt == 0:
                    self.sync(force=True)
        raise NoSuchMessage(f"Message UID {uid} was expunged")

    def source_path(self, uid: int) -> str | None:
        rec = self.recs.get(uid)
        return None if rec is None else self.path(rec.subdir, rec.name)

    # Index cache -------------------------------------------------------------

    def cache_rows(self) -> list[tuple[int, str, str, float, int, int, int]]:
        return [(r.uid, r.base, r.name, r.mtime, r.size, r.vsize, r.modseq) for r in self.recs.values()]

    def cache_extra(self) -> dict[int, tuple[str, ...]]:
        return {r.uid: tuple(sorted(r.extra)) for r in self.recs.values() if r.extra}

    def load_cache_rows(self, uidvalidity: int, highest_modseq: int, next_uid: int,
                        rows: list[tuple[int, str, str, float, int, int, int]],
                        extra: dict[int, tuple[str, ...]] | None = None, extra_names: list[str] | None = None) -> None:
        self._cached_extra = dict(extra or {})
        self.extra_names = list(extra_names or [])
        self.highest_modseq = max(self.highest_modseq, highest_modseq)
        self.uidvalidity_hint = uidvalidity
        self._cached = {base: (uid, name, mtime, size, vsize, modseq)
                        for uid, base, name, mtime, size, vsize, modseq in rows}
        self.next_uid = max(self.next_uid, next_uid)
        self._baseline_known = True
