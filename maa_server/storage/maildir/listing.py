"""The file listing of a Maildir folder's new/ and cur/, kept between scans.

A busy folder is rescanned often: every rename (a flag change), delivery
or expunge moves the directory's mtime, and Dovecot's same-second rule
(maildir-sync.c, MAILDIR_SYNC_SECS) rescans while the mtime is that fresh.
Walking 100,000 names in Python each time would cost ~100 ms; instead the
names of the last scan are kept as sets, a rescan is one listdir per
directory and a set difference (C speed), and only the names that came or
went are looked at. `changes` tells the caller which base names those were,
so that it can reconcile only them.
"""

from __future__ import annotations

import os

SUBDIRS = ("new", "cur")


def base_of(name: str) -> str | None:
    """The base name (before ':'), or None for what is not a message file:
    dot files and names with CR/LF are ignored (maildir-sync.c)."""
    if name.startswith(".") or "\n" in name or "\r" in name:
        return None
    return name.partition(":")[0] or None


class _Collision(Exception):
    """Two names with one base in one directory: rebuild from scratch."""


class DirListing:
    """base -> (subdir, name) of every message file; a file in cur/ wins over
    one of the same base in new/ (a rename new/ -> cur/ caught halfway)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, str]] = {}
        # Bases that may differ from the previous scan; None: all of them.
        self.changes: set[str] | None = None
        self._names: dict[str, set[str]] | None = None  # subdir -> names listed
        self._maps: dict[str, dict[str, str]] = {sub: {} for sub in SUBDIRS}  # subdir -> base -> name

    def forget(self) -> None:
        """Make the next scan a full one (after a failed sync, whose caller
        may not have seen every change)."""
        self._names = None

    def scan(self, mail_dir: str) -> dict[str, tuple[str, str]]:
        listed: dict[str, list[str]] = {}
        for subdir in SUBDIRS:
            try:
                listed[subdir] = os.listdir(os.path.join(mail_dir, subdir))
            except FileNotFoundError:
                listed[subdir] = []  # never recreate: the folder may have been deleted
        if self._names is not None:
            try:
                self._update(listed)
                return self.files
            except _Collision:
                pass
        self._rebuild(listed)
        return self.files

    def _rebuild(self, listed: dict[str, list[str]]) -> None:
        files: dict[str, tuple[str, str]] = {}
        for subdir in SUBDIRS:
            mapping: dict[str, str] = {}
            for name in listed[subdir]:
                base = base_of(name)
                if base is not None:
                    mapping[base] = name  # the last of a duplicate wins, as before
                    files[base] = (subdir, name)
            self._maps[subdir] = mapping
        self.files = files
        self._names = {subdir: set(names) for subdir, names in listed.items()}
        self.changes = None

    def _update(self, listed: dict[str, list[str]]) -> None:
        assert self._names is not None
        changes: set[str] = set()
        now = {subdir: set(names) for subdir, names in listed.items()}
        for subdir in SUBDIRS:
            old, new = self._names[subdir], now[subdir]
            if old == new:
                continue
            mapping = self._maps[subdir]
            for name in old - new:
                base = base_of(name)
                if base is None:
                    continue
                if mapping.get(base) != name:
                    raise _Collision
                del mapping[base]
                changes.add(base)
            for name in new - old:
                base = base_of(name)
                if base is None:
                    continue
                if base in mapping:
                    raise _Collision
                mapping[base] = name
                changes.add(base)
        cur, new_map = self._maps["cur"], self._maps["new"]
        for base in changes:
            if base in cur:
                self.files[base] = ("cur", cur[base])
            elif base in new_map:
                self.files[base] = ("new", new_map[base])
            else:
                self.files.pop(base, None)
        self._names = now
        self.changes = changes
