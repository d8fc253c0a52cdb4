"""What was already answered or forwarded, in Dovecot's own duplicate
database `~/.dovecot.lda-dupes` (src/lib-lda/duplicate.c), so vacation
replies are not sent twice when a user moves between Dovecot and us.

File: a 4-byte little-endian version (2), then records of
`expiry (u32) | id length (u32) | user length (u32) | id | user`. Updated
under Dovecot's dotlock (`.lock` next to the file, created exclusively,
written and renamed over the file: file_dotlock_replace()). Ids are
Pigeonhole's: md5(lowercased sender + handle) for vacation
(ext-vacation.c act_vacation_hash()), `<msgid>-<recipient>-<target>--` for
redirect. Blocking file I/O: callers run it in a thread."""

from __future__ import annotations

import hashlib
import os
import struct
import time
from pathlib import Path

DUPLICATES_FILE = ".dovecot.lda-dupes"
VERSION = 2
_HEADER = struct.Struct("<I")
_RECORD = struct.Struct("<III")
LOCK_TIMEOUT = 20.0  # duplicate.c: dotlock timeout
LOCK_STALE = 10.0  # duplicate.c: stale_timeout


def vacation_id(sender: str, handle: str) -> bytes:
    return hashlib.md5((sender.lower() + handle).encode("utf-8", "surrogateescape")).digest()


def vacation_handle(reason: str, subject: str, from_: str, mime: bool) -> str:
    """Pigeonhole's default :handle (cmd-vacation.c), measured: the same
    id as Pigeonhole 0.5.19 wrote for `vacation "I am away"`."""
    return (reason + (subject or "<default-subject>") + (from_ or "<default-from>")
            + ("<MIME>" if mime else "<NO-MIME>"))


class DuplicateTracker:
    def __init__(self, path: Path, user: str, now: float | None = None) -> None:
        self.path = path
        self.user = user
        self.now = now  # fixed "now" for tests; None = the clock

    def _now(self) -> int:
        return int(self.now if self.now is not None else time.time())

    def _read(self) -> dict[tuple[bytes, str], int]:
        try:
            data = self.path.read_bytes()
        except OSError:
            return {}
        if len(data) < _HEADER.size or _HEADER.unpack_from(data)[0] != VERSION:
            return {}  # another version: Dovecot starts afresh too
        now, pos, out = self._now(), _HEADER.size, {}
        while pos + _RECORD.size <= len(data):
            stamp, id_size, user_size = _RECORD.unpack_from(data, pos)
            pos += _RECORD.size
            if pos + id_size + user_size > len(data):
                break  # torn tail
            key = (data[pos:pos + id_size], data[pos + id_size:pos + id_size + user_size].decode(
                "utf-8", "replace"))
            pos += id_size + user_size
            if stamp >= now:
                out[key] = stamp
        return out

    def seen(self, ident: bytes) -> bool:
        return (ident, self.user) in self._read()

    def mark(self, ident: bytes, seconds: int) -> None:
        lock = self.path.with_name(self.path.name + ".lock")
        fd = self._lock(lock)
        if fd is None:
            return  # could not lock: the next delivery may answer again, nothing is lost
        try:
            entries = self._read()
            entries[(ident, self.user)] = self._now() + seconds
            out = bytearray(_HEADER.pack(VERSION))
            for (key, user), stamp in entries.items():
                name = user.encode("utf-8")
                out += _RECORD.pack(stamp, len(key), len(name)) + key + name
            os.write(fd, bytes(out))
            os.fsync(fd)
            os.replace(lock, self.path)
        except OSError:
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def check_and_mark(self, key: str, seconds: int) -> bool:
        """The duplicate test (RFC 7352): True when seen before; remembered either way."""
        ident = hashlib.md5(b"duplicate\0" + key.encode("utf-8", "surrogateescape")).digest()
        was = self.seen(ident)
        if not was:
            self.mark(ident, seconds)
        return was

    def _lock(self, lock: Path) -> int | None:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    if time.time() - lock.stat().st_mtime > LOCK_STALE:
                        lock.unlink(missing_ok=True)  # a crashed writer's
                        continue
                except FileNotFoundError:
                    continue
            except OSError:
                return None
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
