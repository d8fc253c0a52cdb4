"""maa-lda as an MTA runs it: a subprocess, message on stdin, dovecot-lda's
exit codes (0, 67 EX_NOUSER, 75 EX_TEMPFAIL, 64 EX_USAGE)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.pop3.maa_pop3_harness import MaaStack
from tests.support.raw_imap import assert_idle_sees

NOBODY = 65534
MESSAGE = b"From: a@example.org\nSubject: via lda\nMessage-ID: <lda1@x>\n\nbody \xc3\xa4\n"


def lda_stack(root: Path, **kwargs: Any) -> MaaStack:
    """maa-lda, as dovecot-lda, drops to the userdb uid/gid before it
    touches the Maildir, and as root it refuses users without one (and uid 0
    in a passwd-file): under root the users are nobody's, homes included."""
    uid, gid = (NOBODY, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    # (MaaStack's config sets first_valid_uid = 0, so nobody's 65534 passes)
    stack = MaaStack(root, uid=uid, gid=gid, **kwargs)
    own_homes(root)
    return stack


def own_homes(root: Path) -> None:
    """Under root: everything below home/ belongs to the mail user."""
    if os.geteuid() != 0:
        return
    for dirpath, _dirs, files in os.walk(root / "home"):
        os.chown(dirpath, NOBODY, NOBODY)
        for name in files:
            os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)


def run_lda(stack: MaaStack, *args: str, stdin: bytes = MESSAGE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "maa_server.cli.lda", "-c", str(stack.config_path), *args],
                          input=stdin, capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}, check=False)


def stored(stack: MaaStack, user: str) -> list[bytes]:
    box = stack.maildir(user)
    return [p.read_bytes() for sub in ("new", "cur") for p in sorted((box / sub).iterdir())]


def test_delivers_unchanged_and_exit_0(tmp_path: Path) -> None:
    stack = lda_stack(tmp_path)  # config and users only; no listener needed
    result = run_lda(stack, "-d", "alice", "-f", "bounce@example.org")
    assert result.returncode == 0, result.stderr
    # dovecot-lda adds no headers (observed)
    assert stored(stack, "alice") == [MESSAGE]
    assert b"lda(alice)<" in result.stderr and b"msgid=<lda1@x>: saved mail to INBOX" in result.stderr


def test_unknown_user_exits_67(tmp_path: Path) -> None:
    stack = lda_stack(tmp_path)
    result = run_lda(stack, "-d", "nosuchuser")
    assert result.returncode == 67
    assert b"nosuchuser" in result.stderr


def test_missing_mailbox_falls_back_to_inbox(tmp_path: Path) -> None:
    stack = lda_stack(tmp_path)
    result = run_lda(stack, "-d", "alice", "-m", "NoSuchBox", "-e")
    assert result.returncode == 0, result.stderr
    assert len(stored(stack, "alice")) == 1
    assert b"save failed to open mailbox NoSuchBox: Mailbox doesn't exist: NoSuchBox" in result.stderr


def test_mbox_from_line_is_removed(tmp_path: Path) -> None:
    stack = lda_stack(tmp_path)
    result = run_lda(stack, "-d", "bob", stdin=b"From sender@example.org Thu Nov 26 17:00:00 2026\n" + MESSAGE)
    assert result.returncode == 0, result.stderr
    assert stored(stack, "bob") == [MESSAGE]


def test_broken_config_is_a_temporary_failure(tmp_path: Path) -> None:
    stack = lda_stack(tmp_path)
    stack.config_path.write_text("this is { not a config\n")
    result = run_lda(stack, "-d", "alice")
    assert result.returncode == 75


def test_usage_error_exits_64(tmp_path: Path) -> None:
    stack = lda_stack(tmp_path)
    result = run_lda(stack, "--no-such-option")
    assert result.returncode == 64


def test_lda_delivery_wakes_a_session_in_another_process(tmp_path: Path) -> None:
    """A waiting IDLE-like session in the server process notices a maa-lda
    delivery made by another process (the storage's cross-process wakeup)."""
    import asyncio

    stack = lda_stack(tmp_path).start()
    try:
        async def wait_for_lda() -> bool:
            user = await stack.ctx.auth.lookup_user("alice")
            assert user is not None
            box = await (await stack.ctx.open_store(user)).open_mailbox("INBOX")
            await box.sync()
            own_homes(tmp_path)  # the in-process server wrote as root
            lda = asyncio.ensure_future(asyncio.to_thread(run_lda, stack, "-d", "alice"))
            woke = False
            for _ in range(40):  # bounded: never hang the suite
                if await box.wait_for_change(0.5):
                    await box.sync()
                    if box.messages():
                        woke = True
                        break
            result = await lda
            assert result.returncode == 0, result.stderr
            return woke

        assert stack.run(wait_for_lda(), timeout=60)
    finally:
        stack.stop()


def test_message_from_path(tmp_path: Path) -> None:
    stack = lda_stack(tmp_path)
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE.replace(b"\n", b"\r\n"))
    result = run_lda(stack, "-d", "alice", "-p", str(message), stdin=b"")
    assert result.returncode == 0, result.stderr
    assert stored(stack, "alice") == [MESSAGE]  # stored with LF line ends, as Dovecot does


def test_mailbox_flag_saves_into_that_folder(tmp_path: Path) -> None:
    stack = lda_stack(tmp_path)
    lists = stack.maildir("alice") / ".Lists"  # Maildir++ folder "Lists"
    for sub in ("cur", "new", "tmp"):
        (lists / sub).mkdir(parents=True)
    own_homes(tmp_path)
    result = run_lda(stack, "-d", "alice", "-m", "Lists", "-f", "list@example.org")
    assert result.returncode == 0, result.stderr
    assert [p.read_bytes() for p in (lists / "new").iterdir()] == [MESSAGE]
    assert stored(stack, "alice") == []
    assert b"msgid=<lda1@x>: saved mail to Lists" in result.stderr


def test_mailbox_flag_creates_with_lda_mailbox_autocreate(tmp_path: Path) -> None:
    stack = lda_stack(tmp_path, extra_config="lda_mailbox_autocreate = yes")
    result = run_lda(stack, "-d", "alice", "-m", "Fresh")
    assert result.returncode == 0, result.stderr
    assert len(list((stack.maildir("alice") / ".Fresh" / "new").iterdir())) == 1


def test_lda_delivery_shows_up_in_imap_idle_of_another_process(tmp_path: Path) -> None:
    """Issue 7: maa-lda (another process) delivers while an IMAP client of
    the server idles (RFC 2177); the server tells it `* 1 EXISTS` unasked."""
    import socket

    from tests.integration.pop3.maa_pop3_harness import PASSWORD

    stack = lda_stack(tmp_path).start()
    try:
        sock = socket.create_connection(("127.0.0.1", stack.imap_port), timeout=20)
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"* OK")
        for tag, command in ((b"a1", b"LOGIN alice " + PASSWORD.encode()), (b"a2", b"SELECT INBOX")):
            sock.sendall(tag + b" " + command + b"\r\n")
            while not (line := reader.readline()).startswith(tag + b" "):
                pass
            assert line.startswith(tag + b" OK"), line
        sock.sendall(b"a3 IDLE\r\n")
        assert reader.readline().startswith(b"+ ")
        own_homes(tmp_path)  # the in-process server wrote as root
        result = run_lda(stack, "-d", "alice")
        assert result.returncode == 0, result.stderr
        assert_idle_sees(sock, reader, b"* 1 EXISTS\r\n", b"a3")
        sock.close()
    finally:
        stack.stop()
