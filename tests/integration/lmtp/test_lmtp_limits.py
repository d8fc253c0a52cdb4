"""LMTP limits and storage failures as Dovecot 2.3.19 answers them (observed
with the real lmtp on loopback): the 4 KiB command-parameter limit, long
lines inside DATA kept whole, a full disk answered 451 4.2.0 for that
recipient only with no partial file left, maa-lda exiting 75 then."""

from __future__ import annotations

import re
import smtplib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lmtp.test_lda import lda_stack, run_lda
from tests.integration.pop3.maa_pop3_harness import MaaStack

INTERNAL_ERROR = re.compile(rb"4\.2\.0 <alice> Internal error occurred\. Refer to server log for "
                            rb"more information\. \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]")


def exchange(stack: MaaStack, payload: bytes, replies: int) -> list[bytes]:
    sock = socket.create_connection(("127.0.0.1", stack.lmtp_port), timeout=10)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"220 ")
    sock.sendall(payload)
    lines = [reader.readline() for _ in range(replies)]
    sock.close()
    return lines


@pytest.mark.parametrize(("size", "reply"), [
    (4096, b"250 2.0.0 OK\r\n"),  # `NOOP ` + 4096 octets: accepted by Dovecot
    (4097, b"500 5.5.2 Line too long\r\n"),
    (70000, b"500 5.5.2 Line too long\r\n"),
    (2_000_000, b"500 5.5.2 Line too long\r\n"),
])
def test_command_parameter_limit_is_dovecots(stack: MaaStack, size: int, reply: bytes) -> None:
    lines = exchange(stack, b"NOOP " + b"a" * size + b"\r\nNOOP\r\n", 2)
    assert lines == [reply, b"250 2.0.0 OK\r\n"]  # the session goes on


def test_long_address_parameters_within_the_limit(stack: MaaStack) -> None:
    # Over aiosmtpd's 512-octet line but inside Dovecot's 4096 parameter octets.
    orcpt = "rfc822;" + "x" * 900 + "+40example.org"
    client = smtplib.LMTP("127.0.0.1", stack.lmtp_port)
    client.docmd("LHLO", "mx")
    assert client.docmd("MAIL", "FROM:<" + "s" * 700 + "@example.org>") == (250, b"2.1.0 OK")
    assert client.docmd("RCPT", f"TO:<alice> ORCPT={orcpt}") == (250, b"2.1.5 OK")
    client.quit()


def test_a_200k_line_in_data_is_stored_whole(stack: MaaStack) -> None:
    line = b"y" * 200_000
    client = smtplib.LMTP("127.0.0.1", stack.lmtp_port)
    client.docmd("LHLO", "mx")
    client.docmd("MAIL", "FROM:<a@example.org>")
    client.docmd("RCPT", "TO:<alice>")
    assert client.docmd("DATA")[0] == 354
    client.send(b"Subject: long\r\n\r\n" + line + b"\r\n.\r\n")
    code, text = client.getreply()
    assert code == 250 and text.endswith(b" Saved"), text
    client.quit()
    (path,) = (stack.maildir("alice") / "new").iterdir()
    assert path.read_bytes().endswith(b"\n\n" + line + b"\n")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """alice's Maildir on a 64 KiB tmpfs (root, and mount allowed)."""
    mount = tmp_path / "home" / "alice" / "Maildir"
    mount.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        for sub in ("cur", "new", "tmp"):
            (mount / sub).mkdir()
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _maildir_files(maildir: Path) -> list[str]:
    return sorted(p.name for sub in ("tmp", "new", "cur") for p in (maildir / sub).iterdir())


@pytest.mark.parametrize("tempfail", ["no", "yes"])
def test_full_disk_fails_that_recipient_only_and_leaves_no_file(
        tmp_path: Path, full_disk: Path, tempfail: str) -> None:
    stack = MaaStack(tmp_path, extra_config=f"quota_full_tempfail = {tempfail}").start()
    try:
        client = smtplib.LMTP("127.0.0.1", stack.lmtp_port)
        client.docmd("LHLO", "mx")
        client.docmd("MAIL", "FROM:<a@example.org>")
        client.docmd("RCPT", "TO:<alice>")
        client.docmd("RCPT", "TO:<bob>")
        assert client.docmd("DATA")[0] == 354
        client.send(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 3000 + b".\r\n")
        alice, bob = client.getreply(), client.getreply()
        client.quit()
        # Dovecot: a temporary failure whatever quota_full_tempfail says
        assert alice[0] == 451 and INTERNAL_ERROR.fullmatch(alice[1]), alice
        assert bob[0] == 250 and bob[1].startswith(b"2.0.0 <bob> "), bob
        assert _maildir_files(full_disk) == []
        assert len(list((stack.maildir("bob") / "new").iterdir())) == 1
    finally:
        stack.stop()


def test_lda_on_a_full_disk_exits_75_and_leaves_no_file(tmp_path: Path, full_disk: Path) -> None:
    stack = lda_stack(tmp_path)
    result = run_lda(stack, "-d", "alice", stdin=b"Subject: big\n\n" + (b"y" * 70 + b"\n") * 3000)
    assert result.returncode == 75, result.stderr
    assert _maildir_files(full_disk) == []
