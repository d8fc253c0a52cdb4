"""The README's run command, followed as a new user would: in a fresh copy
of the checkout, `maa-server -F` with no -c starts on the embedded conf/,
prints its ports and a demo login, and serves TLS with its self-signed
certificate. (Run through `python -m` in the copy: `make run` only adds the
virtualenv around this.)"""

from __future__ import annotations

import os
import poplib
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[3]
DEFAULT_PORTS = {"imap": 1143, "imaps": 1993, "pop3": 1110, "pop3s": 1995, "lmtp": 1024}


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def copy_checkout(dest: Path) -> Path:
    root = dest / "maa-server"
    root.mkdir()
    for name in ("maa_server", "conf"):
        shutil.copytree(CHECKOUT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__", "local.conf"))
    return root


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 60) -> tuple[str, re.Match[str]]:
    """Collect stdout lines (from a thread: no blocking read past the deadline)."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if not line:
            break
        seen += line
        match = re.search(pattern, seen)
        if match:
            return seen, match
    err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    raise AssertionError(f"no {pattern!r} in output: {seen}{err}")


def test_make_run_as_a_new_user(tmp_path: Path) -> None:
    root = copy_checkout(tmp_path)
    ports = dict(DEFAULT_PORTS)
    if not all(port_free(p) for p in ports.values()):
        # Someone (a developer's `make run`) holds the default ports: move
        # this copy aside through the conf's own local.conf hook.
        from .conftest import free_port

        ports = {name: free_port() for name in ports}
        (root / "conf" / "local.conf").write_text(
            "service imap-login {\n  inet_listener imap {\n    port = %(imap)d\n  }\n"
            "  inet_listener imaps {\n    port = %(imaps)d\n  }\n}\n"
            "service pop3-login {\n  inet_listener pop3 {\n    port = %(pop3)d\n  }\n"
            "  inet_listener pop3s {\n    port = %(pop3s)d\n  }\n}\n"
            "service lmtp {\n  inet_listener lmtp {\n    port = %(lmtp)d\n  }\n}\n" % ports)

    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([sys.executable, "-m", "maa_server.cli.server", "-F"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        out, match = read_until(proc, r"demo login: user (\S+), password (\S+)")
        user, password = match.group(1), match.group(2)
        assert str(root / "conf" / "maa.conf") in out  # the copy's own conf, not ours
        assert f"127.0.0.1:{ports['imaps']} (TLS)" in out
        assert f"127.0.0.1:{ports['pop3']}" in out
        assert (root / "var" / "ssl" / "maa-server.pem").exists()
        assert (root / "var" / "passwd").read_text().startswith(f"{user}:{{BLF-CRYPT}}$2y$")

        ctx = ssl.create_default_context(cafile=str(root / "var" / "ssl" / "maa-server.pem"))
        with socket.create_connection(("127.0.0.1", ports["imaps"]), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.recv(4096).startswith(b"* OK")

        pop = poplib.POP3_SSL("127.0.0.1", ports["pop3s"], context=ctx, timeout=10)
        pop.user(user)
        assert pop.pass_(password).startswith(b"+OK")
        pop.quit()
        assert (root / "var" / "mail" / user / "Maildir").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert (root / "var" / "log" / "maa-server.log").exists()


@pytest.mark.skipif(shutil.which("doveconf") is None, reason="Dovecot is not installed")
def test_embedded_conf_is_read_by_the_real_doveconf() -> None:
    """conf/ stays a Dovecot configuration: the real doveconf accepts it."""
    result = subprocess.run(["doveconf", "-n", "-c", str(CHECKOUT / "conf" / "maa.conf")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "port = 1993" in result.stdout
    assert "driver = passwd-file" in result.stdout
