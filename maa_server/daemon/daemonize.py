"""Leave the terminal like `dovecot` without -F does: double fork, new
session, stdio to /dev/null, pid file in base_dir (master.pid)."""

from __future__ import annotations

import os
import sys


def daemonize() -> None:
    """Returns in the grandchild; the original process exits 0."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def write_pid_file(base_dir: str) -> str:
    path = os.path.join(base_dir, "master.pid")
    os.makedirs(base_dir, mode=0o755, exist_ok=True)
    with open(path, "w", encoding="ascii") as fh:
        fh.write(f"{os.getpid()}\n")
    return path


def running_pid(base_dir: str) -> int | None:
    """The pid in master.pid if that process is alive (Dovecot refuses to
    start twice: "Dovecot is already running with PID N")."""
    try:
        with open(os.path.join(base_dir, "master.pid"), encoding="ascii") as fh:
            pid = int(fh.read().strip() or "0")
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
