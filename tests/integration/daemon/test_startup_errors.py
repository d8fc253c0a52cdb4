"""Start-up errors: one clear line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from .conftest import free_port, server_command, write_config
from .pki import TestCA


def run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(server_command("-F", "-c", str(config)), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def ports() -> dict[str, int]:
    return {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}


def assert_one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    fatal = [line for line in result.stderr.splitlines() if "Fatal" in line]
    assert len(fatal) == 1, result.stderr
    return fatal[0]


def test_unknown_setting_names_file_and_line(tmp_path: Path, ca: TestCA) -> None:
    config = write_config(tmp_path, ca, ports(), extra="sssl = yes\n")
    line_no = config.read_text().splitlines().index("sssl = yes") + 1
    line = assert_one_clear_line(run(config))
    assert str(config) in line
    assert f"line {line_no}" in line
    assert "sssl" in line


def test_port_in_use(tmp_path: Path, ca: TestCA) -> None:
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    p = ports()
    p["imap"] = busy.getsockname()[1]
    try:
        line = assert_one_clear_line(run(write_config(tmp_path, ca, p)))
    finally:
        busy.close()
    assert f"listen(127.0.0.1, {p['imap']}) failed: Address already in use" in line


def test_unreadable_key(tmp_path: Path, ca: TestCA) -> None:
    config = write_config(tmp_path, ca, ports())
    (tmp_path / "server.key").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    line = assert_one_clear_line(run(config))
    assert "key" in line.lower()


def test_missing_certificate_is_an_error_not_a_new_certificate(tmp_path: Path, ca: TestCA) -> None:
    config = write_config(tmp_path, ca, ports())
    (tmp_path / "server.pem").unlink()
    line = assert_one_clear_line(run(config))
    assert "server.pem" in line
    assert not (tmp_path / "server.pem").exists()


def test_log_file_that_cannot_be_opened(tmp_path: Path, ca: TestCA) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config = write_config(tmp_path, ca, ports())
    config.write_text(config.read_text().replace(f"log_path = {tmp_path}/maa.log",
                                                 f"log_path = {blocker}/maa.log"))
    line = assert_one_clear_line(run(config))
    assert "log file" in line and str(blocker) in line


def test_already_running(tmp_path: Path, ca: TestCA) -> None:
    import os

    config = write_config(tmp_path, ca, ports())
    (tmp_path / "run" / "master.pid").write_text(f"{os.getpid()}\n")  # a live process
    line = assert_one_clear_line(run(config))
    assert f"already running with PID {os.getpid()}" in line
