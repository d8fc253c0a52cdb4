"""Dotlocks as Dovecot's file-dotlock.c, and the UIDVALIDITY allocator (spec 5.6, 5.9)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from maa_server.storage.maildir import dotlock
from maa_server.storage.maildir.uidvalidity import allocate_uidvalidity


def _old(path, seconds: float = 10) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_lock_content_and_release(tmp_path):
    lock_path = str(tmp_path / "dovecot-uidlist.lock")
    lock = dotlock.acquire(lock_path, str(tmp_path / "dovecot-uidlist"))
    assert lock is not None
    with open(lock_path) as fh:
        assert fh.read() == f"{os.getpid()}:{socket.gethostname()}"
    assert dotlock.acquire(lock_path, str(tmp_path / "x"), nonblocking=True) is None
    lock.release()
    assert not os.path.exists(lock_path)


def test_release_leaves_a_lock_that_replaced_ours(tmp_path):
    lock_path = str(tmp_path / "l.lock")
    lock = dotlock.acquire(lock_path, str(tmp_path / "l"))
    os.unlink(lock_path)
    with open(lock_path, "w") as fh:
        fh.write("1:otherhost")
    lock.release()
    assert os.path.exists(lock_path)


def test_dead_local_pid_lock_is_broken(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          check=True).stdout.strip().decode()
    lock_path = tmp_path / "dovecot-uidlist.lock"
    lock_path.write_text(f"{dead}:{socket.gethostname()}")
    _old(lock_path)
    lock = dotlock.acquire(str(lock_path), str(tmp_path / "dovecot-uidlist"), timeout=5)
    assert lock is not None and lock_path.read_text().startswith(f"{os.getpid()}:")
    lock.release()


def test_live_local_pid_lock_is_never_broken(tmp_path):
    lock_path = tmp_path / "dovecot-uidlist.lock"
    lock_path.write_text(f"{os.getppid()}:{socket.gethostname()}")
    _old(lock_path, 1000)
    with pytest.raises(dotlock.LockTimeout):
        dotlock.acquire(str(lock_path), str(tmp_path / "dovecot-uidlist"), stale_timeout=0.05, timeout=0.3)


def test_foreign_lock_stale_when_nothing_changes(tmp_path):
    lock_path = tmp_path / "dovecot-uidlist.lock"
    lock_path.write_text("12345:some-other-host")
    _old(lock_path)
    lock = dotlock.acquire(str(lock_path), str(tmp_path / "dovecot-uidlist"), stale_timeout=0.2, timeout=5)
    assert lock is not None
    lock.release()


def test_write_replace(tmp_path):
    target = tmp_path / "subscriptions"
    dotlock.write_replace(str(target), str(target) + ".lock", b"V\t2\n\n", stale_timeout=30, timeout=1)
    assert target.read_bytes() == b"V\t2\n\n" and not (tmp_path / "subscriptions.lock").exists()


def test_uidvalidity_allocation(tmp_path):
    first = allocate_uidvalidity(str(tmp_path))
    assert abs(first - time.time()) < 5
    assert (tmp_path / "dovecot-uidvalidity").read_text() == f"{first:08x}"
    assert allocate_uidvalidity(str(tmp_path)) == first + 1
    assert allocate_uidvalidity(str(tmp_path)) == first + 2
    markers = [n for n in os.listdir(tmp_path) if n.startswith("dovecot-uidvalidity.")]
    assert markers == [f"dovecot-uidvalidity.{first + 2:08x}"]
    assert os.stat(tmp_path / markers[0]).st_mode & 0o777 == 0o444


def test_uidvalidity_continues_dovecot_counter(tmp_path):
    (tmp_path / "dovecot-uidvalidity").write_text("6b0865f8")
    (tmp_path / "dovecot-uidvalidity.6b0865f8").touch()
    (tmp_path / "dovecot-uidvalidity.6b0865f0").touch()  # a leftover: smallest goes
    assert allocate_uidvalidity(str(tmp_path)) == 0x6B0865F9
    assert sorted(n for n in os.listdir(tmp_path)) == ["dovecot-uidvalidity", "dovecot-uidvalidity.6b0865f9"]
