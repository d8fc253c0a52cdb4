"""Memory of what was already answered, for vacation's once-per-period
(RFC 5230 4.2) and the duplicate test (RFC 7352): key -> expiry time in a
small JSON file in the user's home. Pigeonhole keeps this in Dovecot's
binary `~/.dovecot.lda-dupes`; ours lives next to it under its own name so
neither server misreads the other's file. Blocking file I/O: callers run it
in a thread."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

DUPLICATES_FILE = ".maa-sieve-duplicates"


class DuplicateTracker:
    def __init__(self, path: Path, now: float | None = None) -> None:
        self.path = path
        self.now = now  # fixed "now" for tests; None = the clock

    def _load(self, now: float) -> dict[str, float]:
        try:
            entries = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(entries, dict):
            return {}
        return {str(k): float(v) for k, v in entries.items()
                if isinstance(v, (int, float)) and v > now}

    def seen(self, key: str) -> bool:
        now = self.now if self.now is not None else time.time()
        return key in self._load(now)

    def mark(self, key: str, seconds: int) -> None:
        now = self.now if self.now is not None else time.time()
        entries = self._load(now)
        entries[key] = now + seconds
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(entries), "utf-8")
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)

    def check_and_mark(self, key: str, seconds: int) -> bool:
        """The duplicate test: True when seen before; remembers it either way."""
        was = self.seen(key)
        if not was:
            self.mark(key, seconds)
        return was
