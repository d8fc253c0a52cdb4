"""Flag changes (renames), new/ -> cur/ moves and expunges (unlinks); blocking.

Dovecot source: maildir-sync-index.c, maildir-util.c. Spec 5.3 and 5.4: a flag
change is a rename() within cur/ with the letters sorted; expunge unlinks the
file and leaves its uidlist line until the next rewrite, which happens when at
most 75 % of the lines are live.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable

from maa_server.storage.interface import MessageInfo
from maa_server.storage.maildir.filename import (
    build_name,
    flags_to_letters,
    letters_to_flags,
    parse_name,
)
from maa_server.storage.maildir.folder import Folder, Rec
from maa_server.storage.maildir.keywords import keyword_index


def _target(current: frozenset[str], flags: frozenset[str], mode: str) -> frozenset[str]:
    if mode == "set":
        return flags
    if mode == "add":
        return current | flags
    lowered = {f.lower() for f in flags}
    return frozenset(f for f in current if f.lower() not in lowered)


def _rename(folder: Folder, rec: Rec, flags: frozenset[str], index: dict[str, int],
            change: tuple[frozenset[str], str] | None = None) -> bool:
    """Rename the file to carry `flags`; False when it is gone. When another
    writer renamed it meanwhile, `change` (flags, mode) is applied again to
    the flags its new name carries, so that their change is kept."""
    for attempt in range(2):
        letters = flags_to_letters(flags, index, rec.unknown)
        new_name = build_name(rec.base, letters, rec.tail)
        if new_name == rec.name and rec.subdir == "cur":
            break
        try:
            os.rename(folder.path(rec.subdir, rec.name), folder.path("cur", new_name))
            break
        except FileNotFoundError:
            if attempt:
                return False
            # Renamed by someone else meanwhile: find its current name.
            found = folder.scan().get(rec.base)
            if found is None:
                return False
            rec.subdir, rec.name = found
            parsed = parse_name(rec.name)
            current, rec.unknown = letters_to_flags(parsed.letters, folder.keywords)
            rec.tail = parsed.tail
            if change is not None:
                flags = _target(current, *change)
    rec.subdir, rec.name = "cur", new_name
    rec.flags = letters_to_flags(letters, folder.keywords)[0]
    return True


def store(folder: Folder, uids: Iterable[int], flags: frozenset[str], mode: str,
          unchanged_since: int | None) -> tuple[list[MessageInfo], list[int]]:
    """STORE: mode "set", "add" or "remove" (RFC 3501 6.4.6), with RFC 7162
    UNCHANGEDSINCE. Keywords beyond the 26 letters live only in our index,
    as in Dovecot's."""
    flags = frozenset(f for f in flags if f != "\\Recent")
    keywords = {f for f in flags if not f.startswith("\\")}
    if keywords and mode != "remove":
        folder.refresh_keywords()
        if not {k.lower() for k in keywords} <= set(keyword_index(folder.keywords)):
            with folder.locked():
                folder.ensure_keywords(sorted(keywords))
    index = keyword_index(folder.keywords)
    changed: list[MessageInfo] = []
    failed: list[int] = []
    # One STORE is one Dovecot transaction: every message it changes gets
    # the same new modseq (mail-index-modseq.c).
    modseq = folder.highest_modseq + 1
    for uid in uids:
        rec = folder.recs.get(uid)
        if rec is None:
            continue
        if unchanged_since is not None and rec.modseq > unchanged_since:
            failed.append(uid)
            continue
        target = _target(rec.all_flags, flags, mode)
        if target == rec.all_flags:
            continue
        extra = frozenset(f for f in target if not f.startswith("\\") and f.lower() not in index)
        if not _rename(folder, rec, target - extra, index, (flags - extra, mode)):
            continue
        if extra != rec.extra:
            rec.extra = extra
            known = {n.lower() for n in folder.extra_names}
            folder.extra_names.extend(sorted(n for n in extra if n.lower() not in known))
        rec.modseq = modseq
        folder.touched.add(uid)
        changed.append(rec.info())
    if changed:
        folder.highest_modseq = modseq
        folder.dirty = True
        if mode != "remove":
            folder.note_keywords(flags)
    return changed, failed


def move_new_to_cur(folder: Folder) -> bool:
    """SELECT semantics: every file in new/ goes to cur/ with ':2,' added
    (a name that already has ':' keeps it), spec 5.4."""
    moved = False
    for rec in list(folder.recs.values()):
        if rec.subdir != "new":
            continue
        name = rec.name if ":" in rec.name else rec.name + ":2,"
        try:
            os.rename(folder.path("new", rec.name), folder.path("cur", name))
        except FileNotFoundError:
            continue
        rec.subdir, rec.name = "cur", name
        moved = True
    if moved:
        folder.dirty = True
    return moved


def remove(folder: Folder, uids: Iterable[int]) -> list[int]:
    """Unlink the files of these messages; returns the UIDs removed."""
    removed: list[int] = []
    for uid in sorted(set(uids)):
        rec = folder.recs.get(uid)
        if rec is None:
            continue
        try:
            os.unlink(folder.path(rec.subdir, rec.name))
        except FileNotFoundError:
            found = folder.scan().get(rec.base)
            if found is not None:
                try:
                    os.unlink(folder.path(*found))
                except FileNotFoundError:
                    pass
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        del folder.recs[uid]
        folder.gone.add(uid)
        folder.by_base.pop(rec.base, None)
        folder.new_recent.discard(uid)
        removed.append(uid)
    if removed:
        folder.highest_modseq += 1
        folder.dirty = True
        compact_if_needed(folder)
    return removed


def compact_if_needed(folder: Folder) -> None:
    """Rewrite dovecot-uidlist when live records are <= 75 % of its lines."""
    data = folder.uidlist.data
    if data is None or data.lines_read == 0 or len(folder.recs) > data.lines_read * 3 // 4:
        return
    with folder.locked():
        folder.uidlist.refresh()
        data = folder.uidlist.data
        if data is None:
            return
        files = folder.scan()
        # N first: dropping the last lines must never let a UID be reused.
        data.next_uid = max(data.effective_next_uid, folder.next_uid)
        data.records = {base: rec for base, rec in data.records.items() if base in files}
        folder.uidlist.rewrite(folder.file_mode)


def save_pop3_uidls(folder: Folder, uidls: dict[int, str]) -> list[MessageInfo]:
    """pop3_save_uidl: freeze UIDLs as `P` fields of dovecot-uidlist (spec
    5.5, 5.13); an extension field change means a full rewrite. A UIDL equal
    to the base file name is written as an empty `P`, as Dovecot does."""
    changed: list[MessageInfo] = []
    with folder.locked():
        folder.uidlist.refresh()
        data = folder.uidlist.data
        if data is None:
            return changed
        for uid, uidl in uidls.items():
            rec = folder.recs.get(uid)
            if rec is None or not uidl or any(ch.isspace() for ch in uidl):
                continue
            urec = data.records.get(rec.base)
            if urec is None or urec.uid != uid:
                continue
            value = "" if uidl == rec.base else uidl
            if urec.ext.get("P") == value:
                continue
            urec.ext["P"] = value
            rec.pop3_uidl = uidl
            folder.touched.add(uid)
            changed.append(rec.info())
        if changed:
            data.next_uid = max(data.effective_next_uid, folder.next_uid)
            folder.uidlist.rewrite(folder.file_mode)
    return changed
