"""Log destinations as Dovecot writes them (spec 6.1): syslog framing
without `Info: `, files with log_timestamp and the level, info/debug split,
SIGUSR1-style reopen after logrotate."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maa_server import logs


class Settings:
    """Only what configure_logging reads (a stand-in for Config.get)."""

    def __init__(self, **values: Any) -> None:
        self.values = values

    def get(self, name: str) -> Any:
        return self.values.get(name, "")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    logs.configure_stderr()


def test_syslog_line_shape(tmp_path: Path) -> None:
    address = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    handler = logs._DovecotSyslogHandler("dovecot", logs.SYSLOG_FACILITIES["mail"], address)
    handler.setFormatter(logs.DovecotFormatter(syslog=True))
    root = logging.getLogger("maa")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logs.get_log("imap-login").info("Login: user=<alice>, method=PLAIN")
    logs.get_log("imap-login").warning("something odd")
    server.settimeout(5)
    # mail.info = 2*8+6, mail.warning = 2*8+4; ident without [pid], as Dovecot's openlog.
    assert server.recv(4096) == b"<22>dovecot: imap-login: Login: user=<alice>, method=PLAIN"
    assert server.recv(4096) == b"<20>dovecot: imap-login: Warning: something odd"
    handler.close()
    server.close()


def test_files_split_by_level_with_timestamp(tmp_path: Path) -> None:
    errors, infos = tmp_path / "errors.log", tmp_path / "info.log"
    logs.configure_logging(Settings(log_path=str(errors), info_log_path=str(infos),
                                    log_timestamp="TS%{usecs} "))
    logs.get_log("master").info("hello")
    logs.get_log("auth").error("broken")
    for handler in logging.getLogger("maa").handlers:
        handler.flush()
    info_lines = infos.read_text().splitlines()
    error_lines = errors.read_text().splitlines()
    assert len(info_lines) == 1 and info_lines[0].endswith("master: Info: hello")
    assert info_lines[0].startswith("TS") and info_lines[0][2:8].isdigit()
    assert len(error_lines) == 1 and error_lines[0].endswith("auth: Error: broken")


def test_reopen_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "maa.log"
    logs.configure_logging(Settings(log_path=str(path)))
    logs.get_log("master").info("before")
    path.rename(tmp_path / "maa.log.1")
    logs.reopen_logs()
    logs.get_log("master").info("after")
    for handler in logging.getLogger("maa").handlers:
        handler.flush()
    assert "before" in (tmp_path / "maa.log.1").read_text()
    assert "after" in path.read_text() and "before" not in path.read_text()
