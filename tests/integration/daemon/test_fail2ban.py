"""fail2ban's stock `dovecot` filter (Debian's fail2ban) bans on the
failed-login lines maa-server writes (issue 8; spec 6.6)."""

from __future__ import annotations

import imaplib
import poplib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import PASSWORD, free_port, start_daemon, write_config
from .pki import TestCA

FILTER = Path("/etc/fail2ban/filter.d/dovecot.conf")


@pytest.mark.skipif(shutil.which("fail2ban-regex") is None or not FILTER.exists(),
                    reason="fail2ban is not installed")
def test_stock_dovecot_filter_matches_failed_logins(tmp_path: Path, ca: TestCA) -> None:
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    config = write_config(tmp_path, ca, ports, extra="auth_failure_delay = 0\n")
    daemon = start_daemon(tmp_path, config, ports)
    try:
        for attempt in range(2):
            imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
            with pytest.raises(imaplib.IMAP4.error):
                imap.login("alice", f"wrong-{attempt}")
            imap.logout()
        pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=10)
        pop.user("alice")
        with pytest.raises(poplib.error_proto):
            pop.pass_("wrong")
        pop.quit()
        # A good login must not count.
        good = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
        good.login("alice", PASSWORD)
        good.logout()
    finally:
        assert daemon.stop() == 0
        daemon.notify.close()
    log = daemon.log_text()
    assert PASSWORD not in log and "wrong-0" not in log  # passwords never logged
    result = subprocess.run(["fail2ban-regex", str(tmp_path / "maa.log"), str(FILTER)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    matched = re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", result.stdout, re.M)
    assert matched, result.stdout
    assert int(matched.group(1)) == 3, result.stdout + log
    assert "127.0.0.1" in result.stdout
