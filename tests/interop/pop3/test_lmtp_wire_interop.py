"""A scripted LMTP session sent to the real Dovecot and to us: the same
reply codes and texts, ids aside. One known difference is normalised away:
Dovecot advertises CHUNKING (BDAT), which aiosmtpd does not implement."""

from __future__ import annotations

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

from tests.integration.pop3.maa_pop3_harness import MaaStack
from tests.interop.pop3.real_dovecot import DOVECOT, NOBODY, RealDovecot, chown_tree

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not os.path.exists(DOVECOT), reason="Dovecot is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the real Dovecot needs root to drop to the mail user"),
]

LHLO = "LHLO mx.example.org"
# (command, number of reply lines expected after it; LHLO's depends on the side)
SCRIPT: list[tuple[str, int]] = [
    ("NOOP", 1), ("HELO x", 1), ("VRFY alice", 1),
    ("RCPT TO:<alice>", 1), ("MAIL FROM:<a@b>", 1), (LHLO, 0),
    ("MAIL FROM:<a@b> SIZE=10", 1), ("MAIL FROM:<a@b> BODY=8BITMIME", 1), ("MAIL FROM:<a@b>", 1),
    ("RCPT TO:<>", 1), ("RCPT TO:alice", 1), ("RCPT TO:<nosuchuser@example.test>", 1),
    ("RCPT TO:<Alice+detail>", 1), ("RCPT TO:<bob>", 1),
    ("DATA", 1), ("Subject: x\r\nMessage-ID: <w@x>\r\n\r\n..dot\r\nbody\r\n.", 2),
    ("DATA", 1), ("RSET", 1), ("MAIL FROM:<>", 1), ("DATA", 1), ("RCPT TO:<bob>", 1),
    ("RSET", 1), ("MAIL FROM: <a@b>", 1), ("MAIL FROM:<a@b", 1), ("QUIT", 1),
]


@pytest.fixture
def pair() -> Iterator[tuple[MaaStack, RealDovecot]]:
    root = Path(tempfile.mkdtemp(prefix="maa-lmtp-wire-"))
    os.chmod(root, 0o755)
    for side in ("ours", "theirs"):
        (root / side).mkdir()
    ours = MaaStack(root / "ours", users=("alice", "bob"), uid=NOBODY, gid=NOBODY,
                    extra_config="ssl = no")
    theirs = MaaStack(root / "theirs", users=("alice", "bob"), uid=NOBODY, gid=NOBODY)
    chown_tree(root / "theirs" / "home")
    dovecot = RealDovecot(root / "theirs", theirs.users_file)
    ours.start()
    try:
        yield ours, dovecot
    finally:
        ours.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


def run(port: int, lhlo_lines: int) -> list[bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    reader = sock.makefile("rb")
    out = [re.sub(rb"^220 \S+ ", b"220 HOST ", reader.readline())]
    for command, replies in SCRIPT:
        replies = replies or lhlo_lines
        sock.sendall(command.encode() + b"\r\n")
        for _ in range(replies):
            line = reader.readline()
            line = re.sub(rb" [A-Za-z0-9+/]{22}(:[TR]\d+)* Saved", b" ID Saved", line)
            if command.startswith("LHLO") and line.startswith(b"250-") and b"." not in line \
                    and line[4:].strip().isalnum() and line[4:].strip().islower():
                line = b"250-HOST\r\n"  # the host name line
            out.append(command.split("\r\n")[0].encode() + b" -> " + line)
    sock.close()
    return [line for line in out if b"CHUNKING" not in line]


def normalise_log(line: str) -> str:
    line = re.sub(r"^lmtp\(\d+\)", "lmtp(P)", line)
    return re.sub(r"^lmtp\((\w+)\)<\d+><[^>]*>", r"lmtp(\1)<P><ID>", line)


def dovecot_lmtp_log(dovecot: RealDovecot) -> list[str]:
    lines = []
    for raw in (dovecot.root / "dovecot.log").read_text().splitlines():
        match = re.match(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d (lmtp\([^)]*\)(?:<\d+><[^>]*>)?): Info: (.*)$", raw)
        if match:
            lines.append(normalise_log(f"{match.group(1)}: {match.group(2)}"))
    return lines


def test_lmtp_replies_match_dovecot(pair: tuple[MaaStack, RealDovecot],
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="maa")
    ours, dovecot = pair
    theirs = run(dovecot.lmtp_port, 5)  # host + 4 capabilities (no TLS configured)
    mine = run(ours.lmtp_port, 4)  # host + 3: no CHUNKING
    differences = [(i, a, b) for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
    assert not differences, "\n".join(f"{i}: ours {a!r} / dovecot {b!r}" for i, a, b in differences)
    assert len(mine) == len(theirs)

    expected: list[str] = []
    ours_log: list[str] = []
    for _ in range(100):  # both log right after their last reply
        expected = dovecot_lmtp_log(dovecot)
        ours_log = [normalise_log(f"{r.dovecot_prefix}: {r.getMessage()}") for r in list(caplog.records)
                    if str(getattr(r, "dovecot_prefix", "")).startswith("lmtp")]
        if len(expected) >= 4 and len(ours_log) >= len(expected):
            break
        time.sleep(0.05)
    assert ours_log == expected, "\n".join(["ours:", *ours_log, "dovecot:", *expected])


def bad_commands(port: int) -> list[bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    reader = sock.makefile("rb")
    reader.readline()
    out = []
    for command in ["FOO"] * 5 + ["MAIL FROM:x"] * 3 + ["RCPT TO:<nosuchuser>"] * 3 + ["FOO"] * 3:
        try:
            sock.sendall(command.encode() + b"\r\n")
            line = reader.readline()
        except OSError:  # closed after the 421
            break
        if not line:
            break
        out.append(re.sub(rb"^421 4\.7\.0 \S+ ", b"421 4.7.0 HOST ", line))
    sock.close()
    return out


def test_too_many_invalid_commands_like_dovecot(pair: tuple[MaaStack, RealDovecot]) -> None:
    ours, dovecot = pair
    theirs = bad_commands(dovecot.lmtp_port)
    assert theirs[-1] == b"421 4.7.0 HOST Too many invalid commands.\r\n"
    assert bad_commands(ours.lmtp_port) == theirs
