"""The real Dovecot 2.3 (Debian packages) as a test oracle: a private
instance per config file (its own base_dir), on loopback ports, run as
root; mail files it must read belong to the mail user `nobody`."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

DOVECOT = "/usr/sbin/dovecot"
NOBODY = 65534
START_TIMEOUT_SECS = 20.0

# The stats sockets readable by root only: the private instance's stats
# process never needs to be reached by another user.
STATS_SERVICE = """\
service stats {
  unix_listener stats-reader {
    mode = 0600
  }
  unix_listener stats-writer {
    mode = 0600
  }
}
"""


def chown_tree(path: Path) -> None:
    """Give files we wrote (as root) to the mail user Dovecot runs as."""
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, NOBODY, NOBODY)
        for name in files:
            os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)


def start_dovecot(config: Path, port: int) -> subprocess.Popen[bytes]:
    """`dovecot -F -c config`, returned once `port` on 127.0.0.1 accepts.
    RuntimeError (with Dovecot's stderr) if it exits or does not listen in
    START_TIMEOUT_SECS."""
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_TIMEOUT_SECS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read() if process.stderr else b""
                raise RuntimeError(f"dovecot did not start: {err!r}") from None
            time.sleep(0.05)


def stop_dovecot(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited after 15 seconds."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
