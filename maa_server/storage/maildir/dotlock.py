"""Dovecot-compatible dotlocks (`dovecot-uidlist.lock`, `subscriptions.lock`, ...).

Dovecot source: src/lib/file-dotlock.c. Spec 5.6. Blocking code: callers run
it in a worker thread. The lock is `open(O_CREAT|O_EXCL)` with the content
`<pid>:<hostname>`; a lock of a live local process is never broken; one of a
dead local process is removed at once; anything else is stale only when
neither the lock nor the protected file changed for `stale_timeout` seconds.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import time
from dataclasses import dataclass
from typing import Self

from maa_server.storage.interface import MailboxError


class LockTimeout(MailboxError):
    code = "SERVERBUG"


@dataclass(frozen=True, slots=True)
class _Stamp:
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


def _stamp(path: str) -> _Stamp | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return _Stamp(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: exists, belongs to someone else
    return True


class Dotlock:
    """One held lock; `release()` unlinks it only if it is still ours."""

    def __init__(self, path: str, ino: int, ctime_ns: int) -> None:
        self.path = path
        # Inode numbers are reused at once: the ctime tells our file apart.
        self._id = (ino, ctime_ns)
        self.released = False

    def touch(self) -> None:
        """Dovecot updates the mtime at least every 10 s during long work."""
        try:
            os.utime(self.path)
            st = os.stat(self.path)
            self._id = (st.st_ino, st.st_ctime_ns)
        except OSError:
            pass

    def release(self, check_content: bool = True) -> None:
        if self.released:
            return
        self.released = True
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if (st.st_ino, st.st_ctime_ns) == self._id and (not check_content or _content(self.path) == _own_content()):
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _hostname() -> str:
    return socket.gethostname()


def _own_content() -> bytes:
    return f"{os.getpid()}:{_hostname()}".encode()


def _content(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(256)
    except OSError:
        return b""


def _try_create(lock_path: str, mode: int) -> Dotlock | None:
    """Dovecot's `dotlock_use_excl = no` method: the content goes into a
    temporary file first, then link() makes it the lock. Unlike O_EXCL +
    write, a process killed half-way never leaves an empty lock behind,
    which others could only break after the 120 s stale timeout. Where hard
    links are not supported, O_EXCL is used (`dotlock_use_excl = yes`)."""
    directory = os.path.dirname(lock_path) or "."
    temp = os.path.join(directory, f".temp.{_hostname()}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
    try:
        write_all(fd, _own_content())
        st = os.fstat(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, lock_path)
    except FileExistsError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        return _try_create_excl(lock_path, mode)
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
    st = os.stat(lock_path)
    return Dotlock(lock_path, st.st_ino, st.st_ctime_ns)


def _try_create_excl(lock_path: str, mode: int) -> Dotlock | None:
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return None
    try:
        write_all(fd, _own_content())
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return Dotlock(lock_path, st.st_ino, st.st_ctime_ns)


def _remove_if_same(lock_path: str, seen: _Stamp) -> None:
    # Re-check it wasn't replaced meanwhile before deleting (file-dotlock.c).
    now = _stamp(lock_path)
    if now is not None and now.ino == seen.ino and now.mtime_ns == seen.mtime_ns:
        try:
            os.unlink(lock_path)
        except FileNotFoundError:
            pass


def acquire(
    lock_path: str,
    protected_path: str,
    *,
    stale_timeout: float = 120.0,
    timeout: float | None = None,
    mode: int = 0o600,
    nonblocking: bool = False,
) -> Dotlock | None:
    """Take the lock, waiting up to `timeout` (default stale + 2 s, spec 5.6).
    With `nonblocking`, returns None at once when it is held by someone
    alive. Raises LockTimeout after waiting in vain."""
    if timeout is None:
        timeout = stale_timeout + 2
    start = time.monotonic()
    last_change = start
    last_seen: tuple[_Stamp | None, _Stamp | None] | None = None
    delay = random.uniform(0.005, 0.015)
    while True:
        lock = _try_create(lock_path, mode)
        if lock is not None:
            return lock
        lock_stamp = _stamp(lock_path)
        if lock_stamp is None:
            continue  # released between our two calls
        now_wall = time.time()
        seen = (lock_stamp, _stamp(protected_path))
        if seen != last_seen:
            last_seen = seen
            last_change = time.monotonic()
        if now_wall - lock_stamp.mtime_ns / 1e9 >= 2.0:
            # Old enough to read its content: "<pid>:<host>".
            try:
                with open(lock_path, "rb") as fh:
                    content = fh.read(256).decode("utf-8", "replace")
            except FileNotFoundError:
                continue
            pid_text, _, host = content.partition(":")
            if host == _hostname() and pid_text.isdigit() and int(pid_text) > 0:
                if not _pid_alive(int(pid_text)):
                    _remove_if_same(lock_path, lock_stamp)
                    continue
            elif time.monotonic() - last_change >= stale_timeout:
                _remove_if_same(lock_path, lock_stamp)
                continue
        if nonblocking:
            return None
        if time.monotonic() - start >= timeout:
            raise LockTimeout(
                f"Timeout while waiting for lock ({time.monotonic() - start:.3f} secs): {lock_path}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def write_replace(path: str, lock_path: str, data: bytes, *, stale_timeout: float,
                  timeout: float, mode: int = 0o600, fsync: bool = True) -> None:
    """The "write the new content into the .lock file, then rename it over
    the target" method of dovecot-keywords and subscriptions (spec 5.6)."""
    lock = acquire(lock_path, path, stale_timeout=stale_timeout, timeout=timeout, mode=mode)
    assert lock is not None
    try:
        fd = os.open(lock_path, os.O_WRONLY | os.O_TRUNC)
        try:
            write_all(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(lock_path, path)
        lock.released = True
    except BaseException:
        lock.release(check_content=False)  # it holds part of the new content
        raise


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def errno_is_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
