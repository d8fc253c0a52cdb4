"""Saving into a Maildir folder: APPEND, delivery and COPY (blocking).

As Dovecot's maildir-save.c: write to tmp/, fsync (mail_fsync), set the mtime
to the INTERNALDATE, then, holding dovecot-uidlist.lock, rename into new/ (no
flags) or cur/ (with flags) and append the uidlist lines. A crash before the
rename leaves only a tmp/ file, which no reader looks at. COPY hard-links the
source file under the same base name (maildir_copy_with_hardlinks), and falls
back to a byte copy across file systems or when the name is taken.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass

from maa_server.storage.interface import NoSuchMailbox, StorageFull
from maa_server.storage.maildir import dotlock
from maa_server.storage.maildir.filename import (
    build_name,
    flags_to_letters,
    letters_to_flags,
    name_generator,
    parse_name,
    virtual_size,
)
from maa_server.storage.maildir.folder import Folder, Rec
from maa_server.storage.maildir.keywords import keyword_index
from maa_server.storage.maildir.uidlist import UidListCorrupt, UidRecord


@dataclass(slots=True)
class Incoming:
    """One message to add: either new bytes (`data`) or a file of another
    folder to link (`source`, with `source_dir` to look again if renamed)."""

    flags: frozenset[str]
    data: bytes | None = None
    # Keywords in the order given: a new keyword takes the lowest free letter
    # in this order, as when Dovecot saves (spec 5.7).
    keyword_order: tuple[str, ...] = ()
    internal_date: float | None = None
    source: str = ""
    source_dir: str = ""
    tmp_path: str = ""
    base: str = ""


def write_tmp(folder: Folder, data: bytes, internal_date: float | None) -> tuple[str, str]:
    """Write the message into tmp/ with LF line ends (mail_save_crlf = no);
    returns (tmp path, base name with ,S= and ,W=)."""
    body = data.replace(b"\r\n", b"\n")
    base = name_generator.generate(len(body), virtual_size(body))
    tmp_path = folder.path("tmp", base)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(tmp_path, flags, folder.file_mode)
    except FileNotFoundError:
        if not os.path.isdir(folder.paths.mail_dir):
            raise NoSuchMailbox("Mailbox was deleted") from None
        os.makedirs(os.path.dirname(tmp_path), exist_ok=True)
        fd = os.open(tmp_path, flags, folder.file_mode)
    try:
        dotlock.write_all(fd, body)
        if folder.fsync != "never":
            os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        os.unlink(tmp_path)
        if dotlock.errno_is_full(exc):
            raise StorageFull("Not enough disk space") from exc
        raise
    os.close(fd)
    when = time.time() if internal_date is None else internal_date
    os.utime(tmp_path, (when, when))
    return tmp_path, base


def _find_source(item: Incoming) -> str | None:
    """The source file was renamed (flag change) or moved new/ -> cur/."""
    base = os.path.basename(item.source).partition(":")[0]
    for subdir in ("cur", "new"):
        try:
            for name in os.listdir(os.path.join(item.source_dir, subdir)):
                if name.partition(":")[0] == base:
                    return os.path.join(item.source_dir, subdir, name)
        except FileNotFoundError:
            continue
    return None


def _place(folder: Folder, item: Incoming, letters: str, hardlinks: bool) -> tuple[str, str, str] | None:
    """Put one message into new/ or cur/; returns (base, subdir, name) or
    None when a copy source vanished (expunged meanwhile)."""
    subdir = "cur" if letters else "new"
    if item.data is not None:
        name = build_name(item.base, letters, with_info=bool(letters))
        os.rename(item.tmp_path, folder.path(subdir, name))
        return item.base, subdir, name
    source = item.source
    base = os.path.basename(source).partition(":")[0]
    for _ in range(2):
        if hardlinks:
            name = build_name(base, letters, with_info=bool(letters))
            try:
                os.link(source, folder.path(subdir, name))
                return base, subdir, name
            except FileNotFoundError:
                found = _find_source(item)
                if found is None:
                    return None
                source = found
                continue
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
        try:
            with open(source, "rb") as fh:
                data = fh.read()
            mtime = os.stat(source).st_mtime
        except FileNotFoundError:
            found = _find_source(item)
            if found is None:
                return None
            source = found
            continue
        tmp_path, new_base = write_tmp(folder, data, mtime)
        name = build_name(new_base, letters, with_info=bool(letters))
        os.rename(tmp_path, folder.path(subdir, name))
        return new_base, subdir, name
    return None


def commit(folder: Folder, items: list[Incoming], hardlinks: bool = True) -> list[int]:
    """Move prepared messages in and give them UIDs, in order, under the
    uidlist lock so that no other process hands out the same UIDs. Returns
    the new UIDs (0 for a copy whose source had vanished)."""
    with folder.locked():
        try:
            folder.uidlist.refresh()
        except UidListCorrupt:
            folder.uidlist.data = None
        if folder.uidlist.data is None:
            folder.create_uidlist(keep_uidvalidity=False)
        data = folder.uidlist.data
        assert data is not None
        wanted: list[str] = []
        for item in items:
            for flag in (*item.keyword_order, *sorted(item.flags)):
                if not flag.startswith("\\") and flag in item.flags and flag not in wanted:
                    wanted.append(flag)
        if wanted:
            folder.ensure_keywords(wanted)
        index = keyword_index(folder.keywords)
        uid = max(data.effective_next_uid, folder.next_uid)
        records: list[UidRecord] = []
        additions: list[Rec] = []
        result: list[int] = []
        used: set[str] = set()
        # One save (a COPY of many messages too) is one Dovecot transaction:
        # all its messages share one new modseq (mail-index-modseq.c).
        modseq = folder.highest_modseq + 1
        for item in items:
            letters = flags_to_letters(item.flags, index)
            placed = _place(folder, item, letters, hardlinks)
            if placed is None:
                result.append(0)
                continue
            base, subdir, name = placed
            used.add(subdir)
            path = folder.path(subdir, name)
            st = os.stat(path)
            parsed = parse_name(name)
            vsize = parsed.vsize
            if vsize is None:
                with open(path, "rb") as fh:
                    vsize = virtual_size(fh.read())
            folder.highest_modseq = modseq
            flags, unknown = letters_to_flags(letters, folder.keywords)
            records.append(UidRecord(uid, base, {}))
            # Keywords past the 26 letters stay in our index only (as Dovecot's).
            extra = frozenset(f for f in item.flags if not f.startswith("\\") and f.lower() not in index)
            if extra:
                known = {n.lower() for n in folder.extra_names}
                folder.extra_names.extend(sorted(n for n in extra if n.lower() not in known))
            additions.append(Rec(uid, base, subdir, name, flags, unknown, "", st.st_mtime,
                                 parsed.size if parsed.size is not None else st.st_size, vsize,
                                 modseq, extra=extra))
            folder.note_keywords(item.flags)
            result.append(uid)
            uid += 1
        for subdir in used:
            folder.sync_dir(subdir)
        if records:
            folder.uidlist.append(records, folder.file_mode)
            folder.insert(additions)
            for rec in additions:
                folder.new_recent.add(rec.uid)
        folder.dirty = True
    return result


def save(folder: Folder, items: list[Incoming], hardlinks: bool = True) -> list[int]:
    """Write new messages to tmp/ (outside the lock), then commit them."""
    try:
        for item in items:
            if item.data is not None:
                item.tmp_path, item.base = write_tmp(folder, item.data, item.internal_date)
        return commit(folder, items, hardlinks)
    except BaseException:
        for item in items:
            if item.tmp_path:
                try:
                    os.unlink(item.tmp_path)
                except FileNotFoundError:
                    pass
        raise
