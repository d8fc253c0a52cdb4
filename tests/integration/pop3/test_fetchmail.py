"""fetchmail (Debian's package) against our POP3 server: everything with
--keep (the mailbox stays as it was), then again without (it is emptied).
fetchmail negotiates STLS, so this also covers TLS with a real client."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.pop3.maa_pop3_harness import PASSWORD, MaaStack, put_message

pytestmark = pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed")


def fetchmail(stack: MaaStack, work: Path, *options: str) -> subprocess.CompletedProcess[str]:
    rc = work / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 protocol pop3 port {stack.pop3_port} auth password\n'
                  f'  user "alice" password "{PASSWORD}" is "alice" here\n'
                  f'  sslproto "tls1.2+" no sslcertck\n')
    os.chmod(rc, 0o600)
    out = work / "delivered"
    command = ["fetchmail", "-f", str(rc), "-i", str(work / "fetchids"), "--pidfile",
               str(work / "fetchmail.pid"), "-N", "--nosyslog", "-a", "--mda",
               f"/bin/sh -c 'cat >> {out}; echo ==END== >> {out}'", *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(work)}, check=False)


def test_fetch_with_keep_then_without(stack: MaaStack, tmp_path: Path) -> None:
    work = tmp_path / "fetch"
    work.mkdir()
    for i in range(3):
        put_message(stack.maildir("alice"), f"170000000{i}.M{i}P1.host",
                    f"From: a@example.org\nSubject: m{i}\n\n.dot\nbody {i}\n".encode())
    first = fetchmail(stack, work, "--keep")
    assert first.returncode == 0, first.stdout + first.stderr
    delivered = (work / "delivered").read_text()
    assert delivered.count("==END==") == 3
    assert ".dot\nbody 0" in delivered  # unstuffed again by fetchmail
    remaining = [p for sub in ("new", "cur") for p in (stack.maildir("alice") / sub).iterdir()]
    assert len(remaining) == 3

    second = fetchmail(stack, work, "--nokeep")
    assert second.returncode == 0, second.stdout + second.stderr
    assert (work / "delivered").read_text().count("==END==") == 6
    remaining = [p for sub in ("new", "cur") for p in (stack.maildir("alice") / sub).iterdir()]
    assert remaining == []
