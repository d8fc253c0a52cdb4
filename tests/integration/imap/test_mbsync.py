"""mbsync (isync) against maa: pull to a local Maildir, push a change back,
sync again with nothing to do (issue 5: a test driving the server with mbsync)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.imap.harness import PASSWORD, ImapServer, Wire
from tests.integration.imap.test_messages import fill

MBSYNC = shutil.which("mbsync")


def _run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MBSYNC, "-c", str(config), "-a"], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (isync) not installed")
def test_mbsync_round_trip(server: ImapServer, tmp_path: Path):
    fill(server, 3)
    local = tmp_path / "local"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(f"""
IMAPAccount maa
Host 127.0.0.1
Port {server.port}
User alice
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account maa

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    first = _run(config)
    assert first.returncode == 0, first.stderr
    inbox_files = list((local / "INBOX" / "cur").iterdir()) + list((local / "INBOX" / "new").iterdir())
    assert len(inbox_files) == 3
    assert (local / "Sent").is_dir() and (local / "Trash").is_dir()
    # Mark one message seen and delete another locally; push both back.
    files = sorted(inbox_files)
    seen = files[0]
    seen.rename(local / "INBOX" / "cur" / (seen.name.split(":2,")[0] + ":2,S"))
    files[1].unlink()
    second = _run(config)
    assert second.returncode == 0, second.stderr
    w = Wire(server.port)
    try:
        w.login()
        lines = w.cmd("SELECT INBOX")
        assert "* 2 EXISTS" in lines
        flags = w.cmd("FETCH 1:* (FLAGS)")
        assert sum("\\Seen" in x for x in flags) == 1
    finally:
        w.close()
    third = _run(config)
    assert third.returncode == 0, third.stderr
