"""The same LMTP transactions sent to the real Dovecot and to us: the stored
files must be identical apart from the transaction ids and dates (spec 8.4:
Return-Path, Delivered-To, Received; LF line ends; dot-unstuffing)."""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import tempfile
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

MESSAGE = (b"From: Sender <sender@example.org>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
           b"Message-ID: <interop@example.org>\r\n\r\n..dot-stuffed line\r\n8-bit \xc3\xa4\r\n"
           + b"long " * 300 + b"\r\n")


@pytest.fixture
def pair() -> Iterator[tuple[MaaStack, RealDovecot]]:
    root = Path(tempfile.mkdtemp(prefix="maa-lmtp-interop-"))
    os.chmod(root, 0o755)
    ours = root / "ours"
    ours.mkdir()
    stack = MaaStack(ours, users=("alice", "bob"), uid=NOBODY, gid=NOBODY)
    theirs_root = root / "theirs"
    theirs_root.mkdir()
    theirs_stack = MaaStack(theirs_root, users=("alice", "bob"), uid=NOBODY, gid=NOBODY)
    chown_tree(theirs_root / "home")
    dovecot = RealDovecot(theirs_root, theirs_stack.users_file)
    stack.start()
    try:
        yield stack, dovecot
    finally:
        stack.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


def transact(port: int, recipients: list[str], sender: str) -> list[tuple[int, bytes]]:
    client = smtplib.LMTP("127.0.0.1", port)
    client.docmd("LHLO", "mx.example.org")
    client.docmd("MAIL", f"FROM:<{sender}>")
    accepted = sum(client.docmd("RCPT", f"TO:<{r}>")[0] == 250 for r in recipients)
    assert client.docmd("DATA")[0] == 354
    client.send(re.sub(rb"(?m)^\.", b"..", MESSAGE) + b".\r\n")
    replies = [client.getreply() for _ in range(accepted)]
    client.quit()
    return replies


def normalise(data: bytes) -> bytes:
    data = re.sub(rb"\tid [A-Za-z0-9+/:]+\n", b"\tid ID\n", data)
    return re.sub(rb"; [A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n", b"; DATE\n", data)


def stored(home: Path, user: str) -> list[bytes]:
    box = home / user / "Maildir"
    return [normalise(p.read_bytes()) for sub in ("new", "cur") for p in sorted((box / sub).iterdir())]


@pytest.mark.parametrize(("recipients", "sender"), [
    (["alice"], "bounce@example.org"),
    (["Alice", "nosuchuser", "bob"], ""),
])
def test_stored_messages_match_dovecot(pair: tuple[MaaStack, RealDovecot], recipients: list[str],
                                       sender: str) -> None:
    stack, dovecot = pair
    theirs = transact(dovecot.lmtp_port, recipients, sender)
    ours = transact(stack.lmtp_port, recipients, sender)
    strip_id = [(code, re.sub(rb" [A-Za-z0-9+/]{22}(:[TR]\d+)* Saved$", b" ID Saved", text))
                for code, text in theirs]
    assert [(code, re.sub(rb" [A-Za-z0-9+/]{22}(:[TR]\d+)* Saved$", b" ID Saved", text))
            for code, text in ours] == strip_id
    for user in ("alice", "bob"):
        assert stored(stack.root / "home", user) == stored(dovecot.root / "home", user)
