"""dovecot-uidlist on disk: incremental reads, appends and atomic rewrites.

Blocking code (run in worker threads). Reads notice changes by inode, size
and mtime as Dovecot does (maildir-uidlist.c); lines appended by others to the
same inode are read from where we stopped; an incomplete last line (a writer
mid-append) is left for the next read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from maa_server.storage.maildir.dotlock import write_all
from maa_server.storage.maildir.uidlist import (
    UidList,
    UidListCorrupt,
    UidRecord,
    format_record,
    format_uidlist,
    parse_header,
    parse_records,
)

UIDLIST = "dovecot-uidlist"


@dataclass(frozen=True, slots=True)
class FileStamp:
    ino: int
    size: int
    mtime_ns: int


def stamp_of(path: str) -> FileStamp | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return FileStamp(st.st_ino, st.st_size, st.st_mtime_ns)


class UidListFile:
    """Our view of one folder's dovecot-uidlist."""

    def __init__(self, control_dir: str, fsync: str = "optimized") -> None:
        self.path = os.path.join(control_dir, UIDLIST)
        self.lock_path = self.path + ".lock"
        self.fsync = fsync
        self.data: UidList | None = None
        self._stamp: FileStamp | None = None
        self._offset = 0  # bytes consumed (complete lines only)
        self._ends_clean = True  # the file ends with '\n'

    def changed(self) -> bool:
        return stamp_of(self.path) != self._stamp

    def refresh(self) -> bool:
        """Re-read if the file changed. Returns True when it did. Raises
        UidListCorrupt for a broken file; returns with data None if missing."""
        stamp = stamp_of(self.path)
        if stamp == self._stamp and (stamp is not None or self.data is None):
            return False
        if stamp is None:
            self.data, self._stamp, self._offset = None, None, 0
            return True
        old = self._stamp
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                stamp = FileStamp(st.st_ino, st.st_size, st.st_mtime_ns)
                if (self.data is not None and old is not None and old.ino == stamp.ino
                        and stamp.size >= self._offset and self._offset > 0):
                    fh.seek(self._offset)
                    tail = fh.read()
                    self._consume_tail(tail)
                else:
                    raw = fh.read()
                    self._parse_full(raw)
        except FileNotFoundError:
            self.data, self._stamp, self._offset = None, None, 0
            return True
        self._stamp = stamp
        return True

    def _parse_full(self, raw: bytes) -> None:
        header, nl, _ = raw.partition(b"\n")
        if not nl:
            raise UidListCorrupt("no header line")
        data = parse_header(header.decode("utf-8", "surrogateescape"))
        self.data = data
        self._offset = len(header) + 1
        self._consume_tail(raw[self._offset:])

    def _consume_tail(self, tail: bytes) -> None:
        assert self.data is not None
        end = tail.rfind(b"\n")
        complete = tail[: end + 1] if end >= 0 else b""
        parse_records(self.data, complete.decode("utf-8", "surrogateescape"))
        self._offset += len(complete)
        self._ends_clean = len(complete) == len(tail)

    def _sync_file(self, fd: int) -> None:
        if self.fsync != "never":
            os.fdatasync(fd)

    def append(self, records: list[UidRecord], mode: int = 0o600) -> None:
        """Add lines at the end (the caller holds the lock and has just
        refreshed). Falls back to a rewrite when the file is missing or its
        last line is incomplete."""
        assert self.data is not None
        if self._stamp is None or not self._ends_clean or self.data.needs_rewrite:
            for rec in records:
                self.data.records[rec.base] = rec
            self.rewrite(mode)
            return
        payload = b"".join(format_record(rec) for rec in records)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            write_all(fd, payload)
            self._sync_file(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        for rec in records:
            self.data.records[rec.base] = rec
            self.data.lines_read += 1
        self._offset += len(payload)
        self._stamp = FileStamp(st.st_ino, st.st_size, st.st_mtime_ns)

    def rewrite(self, mode: int = 0o600) -> None:
        """Write dovecot-uidlist.tmp and rename it over the file (new inode)."""
        assert self.data is not None
        payload = format_uidlist(self.data)
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            write_all(fd, payload)
            self._sync_file(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.path)
        self.data.needs_rewrite = False
        self.data.lines_read = len(self.data.records)
        self._offset = len(payload)
        self._ends_clean = True
        self._stamp = FileStamp(st.st_ino, st.st_size, st.st_mtime_ns)
