"""UIDLs identical to the real Dovecot's on the same Maildir (spec 5.13):
Dovecot 2.3 (Debian's dovecot-pop3d) and maa-server take turns on one
mailbox, before and after IMAP flag changes and a new delivery, for several
pop3_uidl_format templates. Also: RETR/DELE effects that Dovecot then sees."""

from __future__ import annotations

import imaplib
import os
import poplib
import shutil
import tempfile
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


def uidls(port: int) -> list[bytes]:
    client = poplib.POP3("127.0.0.1", port, timeout=15)
    client.user("alice")
    client.pass_(PASSWORD)
    _, lines, _ = client.uidl()
    client.quit()
    return lines


@pytest.fixture(params=["%08Xu%08Xv", "%f", "%v.%u", "%g-%Xu"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[MaaStack, RealDovecot]]:
    fmt = request.param
    # Dovecot's auth (user dovecot) and mail process (nobody) must reach the
    # files: pytest's tmp_path lives under a 0700 directory.
    tmp_path = Path(tempfile.mkdtemp(prefix="maa-pop3-interop-"))
    os.chmod(tmp_path, 0o755)
    stack = MaaStack(tmp_path, users=("alice",), uid=NOBODY, gid=NOBODY,
                     extra_config=f"auth_failure_delay = 0\npop3_uidl_format = {fmt}")
    box = stack.maildir("alice")
    put_message(box, "1700000000.M1P1.host", b"From: a@b\nSubject: one\n\nbody1\n")
    put_message(box, "1700000001.M2P1.host", b"From: a@b\nSubject: two\n\nbody2\n")
    third = b"From: a@b\nSubject: 3\n\nbody3\n"
    put_message(box, f"1700000002.M3P1.host,S={len(third)}:2,S", third, subdir="cur")
    chown_tree(tmp_path / "home")
    dovecot = RealDovecot(tmp_path, stack.users_file, fmt)
    stack.start()
    try:
        yield stack, dovecot
    finally:
        stack.stop()
        dovecot.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_uidls_equal_before_and_after_imap_changes(pair: tuple[MaaStack, RealDovecot]) -> None:
    stack, dovecot = pair
    theirs = uidls(dovecot.pop3_port)
    assert len(theirs) == 3
    ours = uidls(stack.pop3_port)
    chown_tree(stack.maildir("alice"))
    assert ours == theirs

    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port)
    imap.login("alice", PASSWORD)
    imap.select("INBOX")
    imap.store("1", "+FLAGS", "(\\Flagged \\Seen)")
    imap.store("3", "-FLAGS", "(\\Seen)")
    imap.logout()
    put_message(stack.maildir("alice"), "1700000003.M4P1.host", b"From: a@b\nSubject: four\n\nbody4\n")
    chown_tree(stack.maildir("alice"))

    ours_after = uidls(stack.pop3_port)
    chown_tree(stack.maildir("alice"))
    theirs_after = uidls(dovecot.pop3_port)
    assert ours_after == theirs_after
    assert ours_after[:3] == theirs


@pytest.mark.parametrize("pair", ["%08Xu%08Xv"], indirect=True)
def test_our_retr_and_dele_are_what_dovecot_sees(pair: tuple[MaaStack, RealDovecot]) -> None:
    stack, dovecot = pair
    before = uidls(dovecot.pop3_port)
    client = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=15)
    client.user("alice")
    client.pass_(PASSWORD)
    client.retr(2)
    client.dele(1)
    client.quit()
    chown_tree(stack.maildir("alice"))
    after = uidls(dovecot.pop3_port)
    assert [line.split()[1] for line in after] == [line.split()[1] for line in before[1:]]
    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port)
    imap.login("alice", PASSWORD)
    imap.select("INBOX")
    _, data = imap.fetch("1", "(FLAGS)")
    imap.logout()
    assert b"\\Seen" in data[0]
