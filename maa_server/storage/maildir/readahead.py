"""Read-ahead for sequential message reads (FETCH 1:* BODY[], POP3 RETR of
every message, a first ENVELOPE fetch of a folder).

Message files are read in a worker thread so that the event loop never
blocks on the disk, but one thread hop per message costs more than reading
a typical 30 KB message. When reads go in UID order, each hop reads the
next few files too (doubling up to READ_AHEAD_MAX files or READ_AHEAD_BYTES
bytes); the extra contents wait here for the next calls. Maildir files are
never changed in place, so what was read stays right; an expunge is noticed
by the mailbox before it looks here. Any read out of order drops the rest.
"""

from __future__ import annotations

import bisect
from collections.abc import Container, Sequence

READ_AHEAD_MAX = 64  # files per thread hop
READ_AHEAD_BYTES = 1 << 20  # at most this much read ahead (beyond the one asked for)


class ReadAhead:
    def __init__(self) -> None:
        self._ahead: dict[int, bytes] = {}
        self._next = 0  # the UID a sequential reader asks for next
        self._run = 1  # files to read in the next hop

    def take(self, uid: int) -> bytes | None:
        return self._ahead.pop(uid, None)

    def take_after(self, uid: int, limit: int, skip: Container[int] = ()) -> list[tuple[int, bytes]]:
        """Take up to `limit` contents read ahead past `uid` (UID order),
        leaving out UIDs in `skip`."""
        found = sorted(u for u in self._ahead if u > uid and u not in skip)[:limit]
        return [(u, self._ahead.pop(u)) for u in found]

    def clear(self) -> None:
        self._ahead.clear()
        self._next, self._run = 0, 1

    def plan(self, uid: int, order: Sequence[int]) -> list[int]:
        """The UIDs to read in this hop: `uid` first. `order` is the
        mailbox's UIDs, ascending."""
        # A new hop: whatever is left over was skipped by the reader (it
        # asked past it), so at most one hop's worth is ever held here.
        self._ahead.clear()
        if uid == self._next:
            self._run = min(self._run * 2, READ_AHEAD_MAX)
        else:
            self._run = 1
        i = bisect.bisect_left(order, uid)
        if i >= len(order) or order[i] != uid:
            self._next = 0
            return [uid]
        wanted = list(order[i:i + self._run])
        self._next = order[i + 1] if i + 1 < len(order) else 0
        return wanted

    def keep(self, uids: Sequence[int], contents: Sequence[bytes | None], order: Sequence[int]) -> None:
        """Hold what was read beyond the first; the next expected read is
        the UID after the last one read."""
        for uid, data in zip(uids[1:], contents[1:]):
            if data is not None:
                self._ahead[uid] = data
        if len(contents) > 1:
            last = uids[len(contents) - 1]
            i = bisect.bisect_right(order, last)
            self._next = order[i] if i < len(order) else 0


def read_files(paths: Sequence[str], budget: int = READ_AHEAD_BYTES) -> list[bytes | None]:
    """Blocking: the files in order (None for one that is gone), stopping
    once `budget` bytes beyond the first file were read."""
    out: list[bytes | None] = []
    total = 0
    for n, path in enumerate(paths):
        if n and total >= budget:
            break
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            out.append(None)
            continue
        if n:
            total += len(data)
        out.append(data)
    return out
