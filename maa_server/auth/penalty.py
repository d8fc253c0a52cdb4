"""Failure delay and the per-IP auth penalty (src/auth/auth-penalty.c,
auth-request-handler.c).

Every failed authentication is answered only after `auth_failure_delay`.
On top, each client IP collects a penalty per failure; the next attempt from
that IP waits 2, 4, 8, then at most 15 seconds. The base is
auth_failure_delay (2 s by default, which gives Dovecot's numbers exactly);
so `auth_failure_delay = 0` turns both off (the test configuration).
A repeat of one of the last 10 identical user+password attempts (a client
retrying a saved wrong password) does not raise the penalty. Trusted
networks get no penalty. Success resets it.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

PENALTY_MAX_SECS = 15.0
PENALTY_MAX_COUNT = 13
PENALTY_EXPIRE_SECS = 3600.0
CHECKSUM_HISTORY = 10
MAX_TRACKED_IPS = 65536


@dataclass(slots=True)
class _IpPenalty:
    count: int = 0
    last: float = 0.0
    checksums: deque[bytes] = field(default_factory=lambda: deque(maxlen=CHECKSUM_HISTORY))


class AuthPenalty:
    def __init__(self, base_delay: float) -> None:
        self.base_delay = base_delay
        self._ips: OrderedDict[str, _IpPenalty] = OrderedDict()

    def _entry(self, ip: str, now: float) -> _IpPenalty | None:
        entry = self._ips.get(ip)
        if entry is not None and now - entry.last > PENALTY_EXPIRE_SECS:
            del self._ips[ip]
            return None
        return entry

    def delay_for(self, ip: str, now: float | None = None) -> float:
        """How long to wait before handling a new attempt from `ip`."""
        if not ip or self.base_delay <= 0:
            return 0.0
        entry = self._entry(ip, time.monotonic() if now is None else now)
        if entry is None or entry.count == 0:
            return 0.0
        return float(min(self.base_delay * 2.0 ** (entry.count - 1), PENALTY_MAX_SECS))

    @staticmethod
    def checksum(user: str, password: str) -> bytes:
        return hashlib.sha1(f"{user}\0{password}".encode("utf-8", "surrogateescape")).digest()[:8]

    def failed(self, ip: str, checksum: bytes | None = None, now: float | None = None) -> None:
        if not ip:
            return
        now = time.monotonic() if now is None else now
        entry = self._entry(ip, now)
        if entry is None:
            entry = _IpPenalty()
            self._ips[ip] = entry
            while len(self._ips) > MAX_TRACKED_IPS:
                self._ips.popitem(last=False)
        self._ips.move_to_end(ip)
        entry.last = now
        if checksum is not None and checksum in entry.checksums:
            return  # the same wrong password again: no extra penalty
        if checksum is not None:
            entry.checksums.append(checksum)
        entry.count = min(entry.count + 1, PENALTY_MAX_COUNT)

    def succeeded(self, ip: str) -> None:
        self._ips.pop(ip, None)
