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


def test_without_c_the_embedded_conf_is_read_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No -c: the embedded conf's relative paths (var/passwd, var/log/...)
    resolve against the checkout even when the MTA starts maa-lda in
    another directory; delivery then happens in the user's home."""
    import maa_server.config

    checkout = tmp_path / "checkout"
    (checkout / "conf").mkdir(parents=True)
    (checkout / "var").mkdir()
    home = checkout / "var" / "mail" / "alice"
    home.mkdir(parents=True)
    ids = f"{os.getuid()}:{os.getgid()}" if os.getuid() else "65534:65534"
    (checkout / "var" / "passwd").write_text(f"alice:{{PLAIN}}x:{ids}::{home}::\n")
    (checkout / "conf" / "maa.conf").write_text(
        "base_dir = var/run\nlog_path = var/log/maa.log\nmail_location = maildir:~/Maildir\n"
        "passdb {\n  driver = passwd-file\n  args = var/passwd\n}\n"
        "userdb {\n  driver = passwd-file\n  args = var/passwd\n}\n")
    monkeypatch.setattr(maa_server.config, "default_config_path", lambda: checkout / "conf" / "maa.conf")
    message = tmp_path / "message"
    message.write_bytes(b"Subject: via embedded conf\n\nbody\n")
    elsewhere = tmp_path / "spool"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    try:
        assert lda.main(["-d", "alice", "-p", str(message)]) == 0
    finally:
        logs.configure_stderr()
    assert Path.cwd() == home
    delivered = list((home / "Maildir" / "new").iterdir())
    assert [p.read_bytes() for p in delivered] == [message.read_bytes()]
    assert "saved mail to INBOX" in (checkout / "var" / "log" / "maa.log").read_text()
