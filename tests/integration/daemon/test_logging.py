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

from .pki import TestCA


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


def test_daemon_logs_to_syslog_with_facility_and_ident(tmp_path: Path, ca: TestCA) -> None:
    """log_path = syslog (Dovecot's default): datagrams on the syslog socket
    (here one the test binds, via MAA_SYSLOG_SOCKET) with the facility from
    syslog_facility and instance_name as the ident, no pid, no timestamp."""
    import imaplib

    from .conftest import PASSWORD, free_port, start_daemon, write_config

    address = tmp_path / "syslog.sock"
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(str(address))
    syslog.settimeout(10)
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    config = write_config(tmp_path, ca, ports, extra="syslog_facility = local3\ninstance_name = maatest\n")
    config.write_text(config.read_text().replace(f"log_path = {tmp_path}/maa.log\n", ""))
    daemon = start_daemon(tmp_path, config, ports, env={logs.SYSLOG_SOCKET_ENV: str(address)})
    try:
        imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
        with pytest.raises(imaplib.IMAP4.error):
            imap.login("alice", "not-" + PASSWORD)
        imap.logout()
        lines: list[bytes] = []
        while not any(b"Disconnected" in line for line in lines):
            lines.append(syslog.recv(65536))
    finally:
        assert daemon.stop() == 0
        daemon.notify.close()
        syslog.close()
    local3_info, local3_warning = 19 * 8 + 6, 19 * 8 + 4
    assert f"<{local3_info}>maatest: master: maa-server v".encode() in b"\n".join(lines)
    assert lines[-1].startswith(f"<{local3_info}>maatest: imap-login: Disconnected: Aborted login by "
                                "logging out (auth failed, 1 attempts in ".encode())
    assert all(line.startswith((f"<{local3_info}>maatest: ".encode(), f"<{local3_warning}>maatest: ".encode()))
               for line in lines)
    assert all(b" Info: " not in line for line in lines)


def test_debug_log_path_gets_only_debug_lines(tmp_path: Path) -> None:
    errors, infos, debugs = tmp_path / "errors.log", tmp_path / "info.log", tmp_path / "debug.log"
    logs.configure_logging(Settings(log_path=str(errors), info_log_path=str(infos),
                                    debug_log_path=str(debugs), auth_debug=True,
                                    log_timestamp="%Y-%m-%d %H:%M:%S "))
    logs.get_log("auth").debug("passwd-file(alice): Performing passdb lookup")
    logs.get_log("imap-login").info("Login: user=<alice>")
    logs.get_log("master").warning("odd")
    logs.get_log("master").fatal("gone")
    for handler in logging.getLogger("maa").handlers:
        handler.flush()
    assert [line[20:] for line in debugs.read_text().splitlines()] == [
        "auth: Debug: passwd-file(alice): Performing passdb lookup"]
    assert [line[20:] for line in infos.read_text().splitlines()] == ["imap-login: Info: Login: user=<alice>"]
    assert [line[20:] for line in errors.read_text().splitlines()] == [
        "master: Warning: odd", "master: Fatal: gone"]


def test_without_debug_settings_debug_lines_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "maa.log"
    logs.configure_logging(Settings(log_path=str(path)))
    logs.get_log("auth").debug("not wanted")
    logs.get_log("auth").info("wanted")
    for handler in logging.getLogger("maa").handlers:
        handler.flush()
    assert "not wanted" not in path.read_text() and "auth: Info: wanted" in path.read_text()
