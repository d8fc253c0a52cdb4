"""maa-adm who / kick against doveadm 2.3.19: the table printer's exact
output (doveadm-print-table.c), the mask rules (doveadm-who.c), and over a
running daemon what a kicked client hears and what the log says."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from maa_server.cli.adm_control import (
    WHO_COLUMNS,
    WHO_ONE_LINE_COLUMNS,
    UsageError,
    format_table,
    parse_masks,
    who_rows,
    wildcard_match_icase,
)
from tests.support.net import read_to_eof

from .conftest import PASSWORD, Daemon

# `doveadm who` / `doveadm who -1` output piped to a file, Dovecot 2.3.19.1,
# three alice IMAP sessions (two IPs), two alice POP3 sessions, one bob.
DOVEADM_WHO = (
    "username # proto (pids)           (ips)                            \n"
    "alice    3 imap  (3477 3475 3502) (127.0.0.2 127.0.0.1)            \n"
    "bob      1 imap  (3481)           (127.0.0.1)                      \n"
    "alice    2 pop3  (3505 3479)      (127.0.0.1)                      \n"
)
DOVEADM_WHO_ONE_LINE = (
    "username                          proto pid  ip       \n"
    "bob                               imap  3481 127.0.0.1\n"
    "alice                             imap  3477 127.0.0.2\n"
    "alice                             pop3  3505 127.0.0.1\n"
)
DOVEADM_WHO_EMPTY = "username # proto (pids) (ips)                         \n"
DOVEADM_WHO_ONE_LINE_EMPTY = "username                              proto pid ip\n"


def session(user: str, protocol: str, pid: int, ip: str) -> dict[str, object]:
    return {"user": user, "protocol": protocol, "pid": pid, "ip": ip, "session": f"{user}{pid}"}


SESSIONS = [session("alice", "imap", 3477, "127.0.0.2"), session("alice", "imap", 3475, "127.0.0.1"),
            session("alice", "imap", 3502, "127.0.0.1"), session("bob", "imap", 3481, "127.0.0.1"),
            session("alice", "pop3", 3505, "127.0.0.1"), session("alice", "pop3", 3479, "127.0.0.1")]


def test_who_table_is_doveadms() -> None:
    assert format_table(WHO_COLUMNS, who_rows(SESSIONS, parse_masks([]))) == DOVEADM_WHO
    assert format_table(WHO_COLUMNS, []) == DOVEADM_WHO_EMPTY


def test_who_one_line_table_is_doveadms() -> None:
    rows = [[str(s["user"]), str(s["protocol"]), str(s["pid"]), str(s["ip"])]
            for s in (SESSIONS[3], SESSIONS[0], SESSIONS[4])]
    assert format_table(WHO_ONE_LINE_COLUMNS, rows) == DOVEADM_WHO_ONE_LINE
    assert format_table(WHO_ONE_LINE_COLUMNS, []) == DOVEADM_WHO_ONE_LINE_EMPTY


def test_a_narrow_terminal_shrinks_columns_but_never_cuts_values() -> None:
    text = format_table(WHO_COLUMNS, who_rows(SESSIONS, parse_masks([])), width=40)
    for line, user in zip(text.splitlines()[1:], ("alice", "bob", "alice")):
        assert line.startswith(user)
    assert "(127.0.0.2 127.0.0.1)" in text and "(3477 3475 3502)" in text


def test_masks() -> None:
    both = parse_masks(["ALI*", "127.0.0.0/30"])
    assert both.matches(SESSIONS[0]) and not both.matches(SESSIONS[3])
    assert not parse_masks(["127.0.0.2"]).matches(SESSIONS[1])
    assert parse_masks(["::1/128"]).ip_matches("::1") and not parse_masks(["::1"]).ip_matches("127.0.0.1")
    assert wildcard_match_icase("alice@example.com", "a?ice@*.COM")
    assert not wildcard_match_icase("alice", "[a]lice")  # only * and ? are special
    with pytest.raises(UsageError, match="^Multiple username masks not supported$"):
        parse_masks(["alice", "bob"])
    with pytest.raises(UsageError, match="^Multiple network masks not supported$"):
        parse_masks(["127.0.0.1", "::1"])
    # A group is listed when any of its IPs is in the network.
    assert [r[0] for r in who_rows(SESSIONS, parse_masks(["127.0.0.2/32"]))] == ["alice"]


def adm(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "maa_server.cli.adm", "-c", str(daemon.config), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def imap_login(port: int, source: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0), timeout=10)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"* OK")
    sock.sendall(f"a LOGIN alice {PASSWORD}\r\n".encode())
    while not (line := reader.readline()).startswith(b"a "):
        pass
    assert line.startswith(b"a OK"), line
    return sock


def test_kick_by_user_and_ip_as_doveadm(daemon: Daemon) -> None:
    here = imap_login(daemon.ports["imap"], "127.0.0.1")
    there = imap_login(daemon.ports["imap"], "127.0.0.2")
    pop = socket.create_connection(("127.0.0.1", daemon.ports["pop3"]), source_address=("127.0.0.2", 0),
                                   timeout=10)
    pop_reader = pop.makefile("rb")
    assert pop_reader.readline().startswith(b"+OK")
    for command in ("USER alice", f"PASS {PASSWORD}"):
        pop.sendall(command.encode() + b"\r\n")
        assert pop_reader.readline().startswith(b"+OK")

    usage = adm(daemon, "kick")
    assert (usage.returncode, usage.stderr) == (64, "Error: user and/or ip[/bits] must be specified.\n")
    two = adm(daemon, "kick", "alice", "bob")
    assert (two.returncode, two.stderr) == (64, "Error: Multiple username masks not supported\n")

    kicked = adm(daemon, "kick", "alice", "127.0.0.2")
    assert (kicked.returncode, kicked.stdout) == (0, "alice kicked connections from the following users:\n\n")
    # What Dovecot's SIGTERMed imap/pop3 processes say (observed, 2.3.19).
    assert read_to_eof(there) == b"* BYE Server shutting down.\r\n"
    assert read_to_eof(pop) == b"-ERR [SYS/TEMP] Server shutting down.\r\n"

    who = adm(daemon, "who", "-1").stdout.splitlines()
    assert [line.split() for line in who[1:]] == [["alice", "imap", str(daemon.proc.pid), "127.0.0.1"]]
    here.sendall(b"n NOOP\r\n")
    assert here.recv(4096).startswith(b"n OK")

    deadline = time.monotonic() + 10  # the sessions log right after closing
    while not all(f"Server shutting down. {counters}=" in daemon.log_text() for counters in ("top", "in")) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    log = daemon.log_text()
    assert log.count("Info: Disconnected: Server shutting down. in=") == 1  # only the kicked one
    assert "pop3(alice)<" in log and "Info: Disconnected: Server shutting down. top=0/0" in log
    here.close()
