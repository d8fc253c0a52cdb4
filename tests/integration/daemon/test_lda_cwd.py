"""maa-lda's working directory: the checkout for the embedded conf (its
paths are relative to it, as for maa-server and maa-adm), then the user's
home as dovecot-lda does (mail-storage-service.c chdir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maa_server import logs
from maa_server.cli import lda


@pytest.fixture(autouse=True)
def keep_cwd() -> object:
    before = os.getcwd()
    yield None
    os.chdir(before)


def test_enter_home(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = logs.get_log("lda(alice)<1><x>")
    home = tmp_path / "home"
    home.mkdir()
    lda.enter_home(str(home), log, debug=False)
    assert Path.cwd() == home
    lda.enter_home(str(tmp_path / "missing"), log, debug=False)  # not there yet: no error
    assert Path.cwd() == home
    (tmp_path / "file").write_text("")
    lda.enter_home(str(tmp_path / "file"), log, debug=False)
    assert Path.cwd() == home
    assert any(f"chdir({tmp_path}/file) failed: Not a directory" in r.getMessage() for r in caplog.records)


def test_without_c_the_embedded_conf_is_read_from_any_directory(tmp_path: Path) -> None:
    """No -c: the embedded conf's relative paths (var/passwd, var/log/...)
    resolve against the checkout even when the MTA starts maa-lda in
    another directory; delivery then happens in the user's home. A
    subprocess (maa-lda started as root becomes the user), with the
    embedded conf's location pointed at a scratch checkout."""
    import shutil
    import subprocess
    import sys
    import tempfile

    # As root maa-lda drops to the user: the tree must be reachable for it.
    base = Path(tempfile.mkdtemp(prefix="maa-lda-test-", dir="/tmp")) if os.getuid() == 0 else tmp_path
    try:
        os.chmod(base, 0o755)
        checkout = base / "checkout"
        (checkout / "conf").mkdir(parents=True)
        home = checkout / "var" / "mail" / "alice"
        home.mkdir(parents=True)
        uid, gid = (os.getuid(), os.getgid()) if os.getuid() else (65534, 65534)
        os.chown(home, uid, gid)
        (checkout / "var" / "passwd").write_text(f"alice:{{PLAIN}}x:{uid}:{gid}::{home}::\n")
        (checkout / "conf" / "maa.conf").write_text(
            "base_dir = var/run\nlog_path = var/log/maa.log\nmail_location = maildir:~/Maildir\n"
            "passdb {\n  driver = passwd-file\n  args = var/passwd\n}\n"
            "userdb {\n  driver = passwd-file\n  args = var/passwd\n}\n")
        message = base / "message"
        message.write_bytes(b"Subject: via embedded conf\n\nbody\n")
        elsewhere = base / "spool"
        elsewhere.mkdir()
        script = (
            "import os, sys\n"
            "from pathlib import Path\n"
            "import maa_server.config\n"
            f"maa_server.config.default_config_path = lambda: Path({str(checkout / 'conf' / 'maa.conf')!r})\n"
            "from maa_server.cli import lda\n"
            f"code = lda.main(['-d', 'alice', '-p', {str(message)!r}])\n"
            "print(os.getcwd())\n"
            "sys.exit(code)\n")
        repo = Path(__file__).resolve().parents[3]
        result = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, capture_output=True, text=True,
                                timeout=60, check=False, env={**os.environ, "PYTHONPATH": str(repo)})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(home)
        delivered = list((home / "Maildir" / "new").iterdir())
        assert [p.read_bytes() for p in delivered] == [message.read_bytes()]
        assert "saved mail to INBOX" in (checkout / "var" / "log" / "maa.log").read_text()
    finally:
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)
