"""maa-adm who / kick / reload / stop through the control socket."""

from __future__ import annotations

import os
import poplib
import stat
import subprocess
import sys

from .conftest import PASSWORD, Daemon


def adm(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "maa_server.cli.adm", "-c", str(daemon.config), *args],
                          capture_output=True, text=True, timeout=60)


def test_control_socket_is_private(daemon: Daemon) -> None:
    mode = os.stat(daemon.home / "run" / "maa-control").st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_who_and_kick(daemon: Daemon) -> None:
    pop = poplib.POP3("127.0.0.1", daemon.ports["pop3"], timeout=10)
    pop.user("alice")
    pop.pass_(PASSWORD)

    who = adm(daemon, "who")
    assert who.returncode == 0, who.stderr
    lines = who.stdout.splitlines()
    assert lines[0].split() == ["username", "#", "proto", "(pids)", "(ips)"]
    assert lines[1].split()[:3] == ["alice", "1", "pop3"]
    assert lines[1].split()[-1] == "(127.0.0.1)"

    one = adm(daemon, "who", "-1")
    assert one.stdout.splitlines()[0].split() == ["username", "proto", "pid", "ip"]

    nobody = adm(daemon, "kick", "bob")
    assert nobody.returncode == 68
    assert nobody.stdout == "no users kicked\n"

    kicked = adm(daemon, "kick", "ali*")
    assert kicked.returncode == 0, kicked.stderr
    assert kicked.stdout == "alice kicked connections from the following users:\n\n"
    try:
        pop.noop()
        closed = False
    except (poplib.error_proto, OSError, EOFError):
        closed = True
    assert closed

    assert adm(daemon, "who").stdout.splitlines()[1:] == []


def test_reload_and_stop(daemon: Daemon) -> None:
    daemon.messages.clear()
    result = adm(daemon, "reload")
    assert result.returncode == 0, result.stderr
    assert any("RELOADING=1" in m.split("\n") for m in daemon.messages) or daemon.wait_notify("READY=1")
    assert adm(daemon, "stop").returncode == 0
    assert daemon.proc.wait(20) == 0


def test_no_daemon_is_a_clear_error(daemon: Daemon) -> None:
    daemon.stop()
    result = adm(daemon, "who")
    assert result.returncode == 75
    assert "maa-control" in result.stderr and "Traceback" not in result.stderr


def test_no_daemon_texts_as_doveadm(daemon: Daemon) -> None:
    """doveadm 2.3.19 with Dovecot stopped: `Fatal: net_connect_unix(...)
    failed: ...` for who/kick, `Fatal: Dovecot is not running (...)` for
    reload/stop; exit code 75 for all."""
    daemon.stop()
    socket_path = daemon.home / "run" / "maa-control"
    for command in (["who"], ["kick", "alice"]):
        result = adm(daemon, *command)
        assert result.returncode == 75
        assert result.stderr.startswith(f"Fatal: net_connect_unix({socket_path}) failed: ")
    for command in ("reload", "stop"):
        result = adm(daemon, command)
        assert result.returncode == 75
        assert result.stderr.startswith("Fatal: maa-server is not running (net_connect_unix(")


def test_reload_with_a_broken_config_as_doveadm(daemon: Daemon) -> None:
    """doveadm reload reads the configuration first: an error is doveconf's
    `Fatal: Error in configuration file ...` with exit 89 (observed), and
    the running server is not touched."""
    good = daemon.config.read_text()
    daemon.config.write_text(good + "bogus_setting = 1\n")
    result = adm(daemon, "reload")
    assert result.returncode == 89
    assert result.stderr.startswith(f"Fatal: Error in configuration file {daemon.config} line ")
    assert result.stderr.rstrip().endswith("Unknown setting: bogus_setting")
    daemon.config.write_text(good)
    pop = poplib.POP3("127.0.0.1", daemon.ports["pop3"], timeout=10)
    pop.user("alice")
    assert pop.pass_(PASSWORD).startswith(b"+OK")
    pop.quit()


def test_maa_server_n_reload_stop_as_the_dovecot_command(daemon: Daemon) -> None:
    """`dovecot -n`, `dovecot reload`, `dovecot stop` have their maa-server
    twins, so scripts and units written for Dovecot keep working."""
    from .conftest import server_command

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(server_command("-c", str(daemon.config), *args), capture_output=True,
                              text=True, timeout=60, check=False)

    dump = run("-n")
    assert dump.returncode == 0, dump.stderr
    assert f"base_dir = {daemon.home}/run\n" in dump.stdout
    daemon.messages.clear()
    assert run("reload").returncode == 0
    daemon.wait_notify("READY=1")
    assert any("RELOADING=1" in m.split("\n") for m in daemon.messages)
    assert run("stop").returncode == 0
    assert daemon.proc.wait(20) == 0
