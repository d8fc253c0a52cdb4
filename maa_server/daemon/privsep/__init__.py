"""Privilege separation (DESIGN "Processes"): started as root, the master
keeps root for binding, keys and authentication; each user's mail is
touched only by a worker running as that user (pool.py, worker.py).
Started as an ordinary user, or with MAA_SERVER_SINGLE_PROCESS=1 in the
environment (tests that need everything in one process), the daemon runs
as one process exactly as before."""

from __future__ import annotations

import os

SINGLE_PROCESS_ENV = "MAA_SERVER_SINGLE_PROCESS"


def wanted() -> bool:
    """Separate privileges: running as root, not told otherwise."""
    return os.geteuid() == 0 and os.environ.get(SINGLE_PROCESS_ENV, "") not in ("1", "yes", "true")
