"""pop3_lock_session: one POP3 session per user (spec 2.7).

Dovecot takes a dotlock `dovecot-pop3-session.lock` in the INBOX's index (or
mail) root (src/pop3/pop3-client.c, pop3_lock_session()): created with
O_EXCL, waited for up to 10 s, considered stale after 5 minutes without a
refresh, refreshed while the session lives. Using the same file keeps a
Dovecot and a maa-server POP3 session on the same Maildir apart.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

LOCK_NAME = "dovecot-pop3-session.lock"
WAIT_SECS = 10.0
STALE_SECS = 300.0
REFRESH_SECS = 60.0


class SessionLocked(Exception):
    """Another POP3 session holds the lock."""


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, f"{os.getpid()}:{socket.gethostname()}".encode())
    finally:
        os.close(fd)
    return True


def _remove_if_stale(path: Path) -> None:
    try:
        if time.time() - path.stat().st_mtime > STALE_SECS:
            path.unlink()
    except FileNotFoundError:
        pass


class Pop3SessionLock:
    def __init__(self, directory: str) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._refresher: asyncio.Task[None] | None = None

    async def acquire(self, wait: float | None = None) -> None:
        """Raises SessionLocked after `wait` seconds (default WAIT_SECS);
        OSError on I/O trouble."""
        deadline = time.monotonic() + (WAIT_SECS if wait is None else wait)
        while True:
            created = await asyncio.to_thread(self._attempt)
            if created:
                self._refresher = asyncio.create_task(self._refresh())
                return
            if time.monotonic() >= deadline:
                raise SessionLocked()
            await asyncio.sleep(0.1)

    def _attempt(self) -> bool:
        if _try_create(self.path):
            return True
        _remove_if_stale(self.path)
        return _try_create(self.path)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECS)
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
