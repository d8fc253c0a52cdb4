"""One scripted POP3 session, sent to the real Dovecot and to us on copies
of the same Maildir: every reply line must be the same bytes (greeting,
CAPA, auth failures, argument errors, listings, TOP/RETR with dot-stuffing,
DELE/RSET/QUIT texts)."""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pop3.maa_pop3_harness import PASSWORD, MaaStack, put_message
from tests.interop.pop3.real_dovecot import DOVECOT, NOBODY, RealDovecot, chown_tree

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not os.path.exists(DOVECOT), reason="Dovecot is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the real Dovecot needs root to drop to the mail user"),
]

MESSAGES = [
    b"From: a@example.org\nSubject: one\n\nline1\n.dotline\n..two\nend\n",
    b"From: c@example.org\nSubject: two\r\n\r\nCRLF body\r\n",
    b"Subject: no final newline\n\nbody",
]
PLAIN = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
# The failed login comes last, in its own connection: after a failure
# Dovecot's auth penalty delays every later attempt from the same IP.
SCRIPTS = [[
    "CAPA", "STAT", "APOP alice 0123", "PASS x", "AUTH",
    "AUTH PLAIN", "*", "AUTH PLAIN !!!", "USER alice", f"PASS {PASSWORD}",
    "CAPA", "USER x", "STAT", "LIST", "LIST 1", "LIST 0", "LIST a", "LIST 1 2", "UIDL", "UIDL 3",
    "UIDL 4", "RETR", "RETR 1", "RETR 2", "RETR 3", "TOP 1", "TOP 1 0", "TOP 2 1", "TOP 1 -1",
    "TOP 1 1 2", "DELE 1", "DELE 1", "RETR 1", "UIDL 1", "LIST", "STAT", "RSET", "STAT",
    "NOOP", "NOOP x", "STLS", "LAST", "list", "DELE 2", "QUIT",
], [
    "FOO", "NOOP", "RETR 1",  # three bad commands before login end the connection
], [
    "USER alice", "PASS wrong", "QUIT",
]]


@pytest.fixture
def pair() -> Iterator[tuple[MaaStack, RealDovecot]]:
    root = Path(tempfile.mkdtemp(prefix="maa-pop3-wire-"))
    os.chmod(root, 0o755)
    stacks = []
    for side in ("ours", "theirs"):
        (root / side).mkdir()
        stack = MaaStack(root / side, users=("alice",), uid=NOBODY, gid=NOBODY,
                         extra_config="auth_failure_delay = 0\nssl = no")
        for i, data in enumerate(MESSAGES):
            put_message(stack.maildir("alice"), f"170000000{i}.M{i}P1.host", data)
        chown_tree(root / side / "home")
        stacks.append(stack)
    # Same UIDVALIDITY on both sides, so the UIDLs can be compared too.
    for stack in stacks:
        (stack.maildir("alice") / "dovecot-uidlist").write_text("3 V1795712500 N1 G0123456789abcdef0123456789abcdef\n")
        chown_tree(stack.maildir("alice"))
    dovecot = RealDovecot(root / "theirs", stacks[1].users_file,
                          extra_config="auth_failure_delay = 0\nauth_mechanisms = plain login")
    ours = stacks[0]
    ours.start()
    try:
        yield ours, dovecot
    finally:
        ours.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


def run_script(port: int, script: list[str]) -> list[bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    reader = sock.makefile("rb")
    out = [reader.readline()]
    multiline = {"CAPA", "LIST", "UIDL", "RETR", "TOP", "AUTH"}
    for command in script:
        sock.sendall(command.encode() + b"\r\n")
        first = reader.readline()
        out.append(command.encode() + b" -> " + first)
        name, _, args = command.partition(" ")
        is_multi = name.upper() in multiline and first.startswith(b"+OK") and (
            name.upper() in ("RETR", "TOP", "CAPA") or not args)
        if is_multi:
            while (line := reader.readline()) not in (b".\r\n", b""):
                out.append(line)
            out.append(b".\r\n")
    out.extend(iter(reader.readline, b""))  # whatever comes before the server closes
    sock.close()
    return out


def normalise_log(line: str) -> str:
    line = re.sub(r"session=<[^>]*>", "session=<S>", line)
    line = re.sub(r"mpid=\d+", "mpid=P", line)
    line = re.sub(r"^pop3\((\w+)\)<\d+><[^>]*>", r"pop3(\1)<P><S>", line)
    return re.sub(r" in \d+ secs\)", " in N secs)", line)


def dovecot_log_lines(dovecot: RealDovecot) -> list[str]:
    """Dovecot's POP3 lines, without the one of RealDovecot's start-up probe."""
    lines = []
    for raw in (dovecot.root / "dovecot.log").read_text().splitlines():
        match = re.match(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d (pop3-login|pop3\(\w+\)<\d+><[^>]*>): Info: (.*)$", raw)
        if match:
            lines.append(normalise_log(f"{match.group(1)}: {match.group(2)}"))
    probe = ("pop3-login: Disconnected: Connection closed (no auth attempts in N secs): user=<>, "
             "rip=127.0.0.1, lip=127.0.0.1, secured, session=<S>")
    if probe in lines:
        lines.remove(probe)
    return lines


def test_scripted_session_replies_are_identical(pair: tuple[MaaStack, RealDovecot],
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="maa")
    ours, dovecot = pair
    theirs = [line for script in SCRIPTS for line in run_script(dovecot.pop3_port, script)]
    mine = [line for script in SCRIPTS for line in run_script(ours.pop3_port, script)]
    differences = [(i, a, b) for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
    assert not differences, "\n".join(f"{i}: ours {a!r} / dovecot {b!r}" for i, a, b in differences)
    assert len(mine) == len(theirs)

    # The log lines too (what fail2ban and admins read), ids and pids aside.
    expected = dovecot_log_lines(dovecot)
    for _ in range(100):  # both servers log just after their last reply
        ours_log = [normalise_log(f"{r.dovecot_prefix}: {r.getMessage()}") for r in list(caplog.records)
                    if str(getattr(r, "dovecot_prefix", "")).startswith("pop3")]
        if len(ours_log) >= len(expected) and len(expected) >= 4:
            break
        time.sleep(0.05)
        expected = dovecot_log_lines(dovecot)
    assert sorted(ours_log) == sorted(expected), "\n".join(["ours:", *ours_log, "dovecot:", *expected])
