"""LMTP over real sockets with smtplib.LMTP (TCP and UNIX socket): Dovecot's
replies (spec 8.1, 8.2), one reply per recipient after DATA (RFC 2033
section 4.2), the headers Dovecot adds (spec 8.4), bytes kept exactly."""

from __future__ import annotations

import logging
import poplib
import re
import smtplib
from pathlib import Path

import pytest

from tests.integration.pop3.maa_pop3_harness import PASSWORD, MaaStack
from tests.support.raw_imap import assert_idle_sees

LONG_LINE = b"X-Long: " + b"y" * 5000
MESSAGE = (b"From: Sender <sender@example.org>\r\n"
           b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
           b"Message-ID: <lmtp1@example.org>\r\n"
           + LONG_LINE + b"\r\n"
           b"\r\n"
           b"Sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9fe, 8-bit body\r\n"
           b".dot-stuffed line\r\n"
           b"..two dots\r\n"
           b"bare\rcr\r\n")


def lmtp(stack: MaaStack, unix: bool = False) -> smtplib.LMTP:
    client = smtplib.LMTP(stack.lmtp_path) if unix else smtplib.LMTP("127.0.0.1", stack.lmtp_port)
    return client


def send_data(client: smtplib.LMTP, message: bytes, replies: int) -> list[tuple[int, bytes]]:
    code, _ = client.docmd("DATA")
    assert code == 354
    stuffed = re.sub(rb"(?m)^\.", b"..", message)
    client.send(stuffed + b".\r\n")
    return [client.getreply() for _ in range(replies)]


def delivered(stack: MaaStack, user: str) -> list[bytes]:
    box = stack.maildir(user)
    return [p.read_bytes() for sub in ("new", "cur") for p in sorted((box / sub).iterdir())]


def split_headers(stored: bytes) -> tuple[list[bytes], bytes]:
    lines = stored.split(b"\n")
    added = []
    while lines and not lines[0].startswith(b"From: "):
        added.append(lines.pop(0))
    return added, b"\n".join(lines)


def test_banner_and_lhlo(stack: MaaStack) -> None:
    client = lmtp(stack)
    code, text = client.docmd("LHLO", "mx.example.org")
    assert code == 250
    lines = text.split(b"\n")
    assert lines[1:] == [b"8BITMIME", b"ENHANCEDSTATUSCODES", b"PIPELINING", b"STARTTLS"]
    client.quit()


def test_banner_text(stack: MaaStack) -> None:
    import socket

    sock = socket.create_connection(("127.0.0.1", stack.lmtp_port), timeout=10)
    banner = sock.makefile("rb").readline()
    assert re.fullmatch(rb"220 \S+ Dovecot \(Debian\) ready\.\r\n", banner)
    sock.close()


def test_command_replies_are_dovecots(stack: MaaStack) -> None:
    client = lmtp(stack)
    assert client.docmd("RCPT", "TO:<alice>") == (503, b"5.5.0 MAIL needed first")
    assert client.docmd("HELO", "x") == (500, b"5.5.1 Unknown command")
    assert client.docmd("HELP") == (500, b"5.5.1 Unknown command")
    assert client.docmd("VRFY", "alice") == (252, b"2.3.3 Try RCPT instead")
    assert client.docmd("NOOP") == (250, b"2.0.0 OK")
    client.docmd("LHLO", "mx.example.org")
    assert client.docmd("MAIL", "FROM:<a@b> SIZE=10") == (555, b"5.5.4 Unsupported parameters")
    assert client.docmd("MAIL", "FROM:a@b") == (501, b"5.5.4 Invalid FROM: Missing '<' at beginning of path")
    assert client.docmd("MAIL", "FROM:<a@b> BODY=8BITMIME") == (250, b"2.1.0 OK")
    assert client.docmd("MAIL", "FROM:<a@b>") == (503, b"5.5.0 MAIL already given")
    assert client.docmd("RCPT", "TO:<>") == (501, b"5.5.4 Invalid TO: Null path not allowed")
    assert client.docmd("RCPT", "TO:<nosuchuser@example.test>") == (
        550, b"5.1.1 <nosuchuser@example.test> User doesn't exist: nosuchuser@example.test")
    assert client.docmd("DATA") == (503, b"5.5.0 No valid recipients")
    assert client.docmd("RSET") == (250, b"2.0.0 OK")
    assert client.docmd("DATA") == (503, b"5.5.0 MAIL needed first")
    assert client.docmd("QUIT") == (221, b"2.0.0 Bye")


def test_two_recipients_one_unknown(stack: MaaStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="maa")
    client = lmtp(stack)
    client.docmd("LHLO", "client.example.org")
    assert client.docmd("MAIL", "FROM:<sender@example.org>")[0] == 250
    assert client.docmd("RCPT", "TO:<alice>") == (250, b"2.1.5 OK")
    assert client.docmd("RCPT", "TO:<nosuchuser>")[0] == 550
    assert client.docmd("RCPT", "TO:<bob>") == (250, b"2.1.5 OK")
    replies = send_data(client, MESSAGE, 2)
    assert [code for code, _ in replies] == [250, 250]
    first = re.fullmatch(rb"2\.0\.0 <alice> ([A-Za-z0-9+/]{22}) Saved", replies[0][1])
    assert first, replies
    session = first.group(1)
    # RFC 2033 replies in RCPT order; the third RCPT command gets :R3 (spec 8.2)
    assert replies[1][1] == b"2.0.0 <bob> " + session + b":R3 Saved"
    client.quit()

    for user in ("alice", "bob"):
        (stored,) = delivered(stack, user)
        added, rest = split_headers(stored)
        assert added[0] == b"Return-Path: <sender@example.org>"
        assert not any(h.startswith(b"Delivered-To:") for h in added)  # two recipients
        assert added[1] == b"Received: from client.example.org ([127.0.0.1])"
        assert added[3] == b"\tid " + session
        assert added[4].startswith(b"\t(envelope-from <sender@example.org>); ")
        # the message itself: LF line ends, dots unstuffed, 8-bit and long lines intact
        assert rest == MESSAGE.replace(b"\r\n", b"\n")
    messages = [r.getMessage() for r in caplog.records
                if getattr(r, "dovecot_prefix", "").startswith("lmtp(alice)<")]
    assert "msgid=<lmtp1@example.org>: saved mail to INBOX" in messages


def test_unix_socket_single_recipient_headers(stack: MaaStack) -> None:
    client = lmtp(stack, unix=True)
    client.docmd("LHLO", "mx.example.org")
    client.docmd("MAIL", "FROM:<bounce@example.org>")
    assert client.docmd("RCPT", "TO:<Alice>") == (250, b"2.1.5 OK")
    ((code, text),) = send_data(client, b"From: x@example.org\r\nSubject: s\r\n\r\nbody\r\n", 1)
    assert code == 250 and text.startswith(b"2.0.0 <Alice> ")
    txn_id = text.split()[2]
    client.quit()
    (stored,) = delivered(stack, "alice")
    added, rest = split_headers(stored)
    assert added[:5] == [
        b"Return-Path: <bounce@example.org>",
        b"Delivered-To: Alice",
        b"Received: from mx.example.org",  # no [ip] for a UNIX socket client
        b"\tby " + added[3][4:].split(b" ")[0] + b" with LMTP",
        b"\tid " + txn_id,
    ]
    assert added[5] == b"\t(envelope-from <bounce@example.org>)"
    assert added[6].startswith(b"\tfor <Alice>; ")
    assert rest == b"From: x@example.org\nSubject: s\n\nbody\n"


def test_second_transaction_id_and_null_sender(stack: MaaStack) -> None:
    client = lmtp(stack)
    client.docmd("LHLO", "mx")
    for _ in range(2):
        client.docmd("MAIL", "FROM:<>")
        client.docmd("RCPT", "TO:<bob>")
        ((code, text),) = send_data(client, b"Subject: n\r\n\r\nx\r\n", 1)
        assert code == 250
    assert re.fullmatch(rb"2\.0\.0 <bob> [A-Za-z0-9+/]{22}:T2 Saved", text)
    client.quit()
    stored = delivered(stack, "bob")
    assert len(stored) == 2
    assert all(s.startswith(b"Return-Path: <>\n") for s in stored)


def test_detail_mailbox(tmp_path: Path) -> None:
    stack = MaaStack(tmp_path, extra_config="auth_failure_delay = 0\n"
                     "lmtp_save_to_detail_mailbox = yes\nlda_mailbox_autocreate = yes").start()
    try:
        client = lmtp(stack)
        client.docmd("LHLO", "mx")
        client.docmd("MAIL", "FROM:<a@example.org>")
        assert client.docmd("RCPT", "TO:<alice+lists>") == (250, b"2.1.5 OK")
        ((code, _),) = send_data(client, b"Subject: d\r\n\r\nx\r\n", 1)
        assert code == 250
        client.quit()
        folder = [p for p in stack.maildir("alice").iterdir() if "lists" in p.name]
        assert folder, list(stack.maildir("alice").iterdir())
        assert not list((stack.maildir("alice") / "new").iterdir())
    finally:
        stack.stop()


def test_delivery_seen_by_pop3_at_next_login(stack: MaaStack) -> None:
    client = lmtp(stack)
    client.docmd("LHLO", "mx")
    client.docmd("MAIL", "FROM:<a@example.org>")
    client.docmd("RCPT", "TO:<alice>")
    send_data(client, b"Subject: hello\r\n\r\nbody\r\n", 1)
    client.quit()
    pop = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=10)
    pop.user("alice")
    pop.pass_(PASSWORD)
    count, _ = pop.stat()
    assert count == 1
    _, lines, _ = pop.retr(1)
    assert lines[0] == b"Return-Path: <a@example.org>"
    assert b"Subject: hello" in lines
    pop.quit()


def test_delivery_wakes_a_waiting_mailbox(stack: MaaStack) -> None:
    """An IDLE session waits in Mailbox.wait_for_change; a delivery through
    MailStore.deliver wakes it at once (in the same process)."""
    import asyncio

    from maa_server.auth.interface import UserInfo

    async def wait_for_delivery() -> bool:
        user = await stack.ctx.auth.lookup_user("alice")
        assert isinstance(user, UserInfo)
        box = await (await stack.ctx.open_store(user)).open_mailbox("INBOX")
        await box.sync()
        before = len(box.messages())

        async def deliver() -> None:
            await asyncio.sleep(0.05)
            await asyncio.to_thread(_lmtp_deliver, stack)

        task = asyncio.ensure_future(deliver())
        woke = await box.wait_for_change(20)
        await task
        await box.sync()
        return woke and len(box.messages()) == before + 1

    assert stack.run(wait_for_delivery())


def _lmtp_deliver(stack: MaaStack) -> None:
    client = lmtp(stack)
    client.docmd("LHLO", "mx")
    client.docmd("MAIL", "FROM:<a@example.org>")
    client.docmd("RCPT", "TO:<alice>")
    send_data(client, b"Subject: wake\r\n\r\nx\r\n", 1)
    client.quit()


def test_too_many_invalid_commands(stack: MaaStack) -> None:
    client = lmtp(stack)
    for _ in range(10):
        assert client.docmd("BOGUS")[0] == 500
    code, text = client.docmd("BOGUS")
    assert code == 421 and text.endswith(b"Too many invalid commands.")
    client.close()


def test_starttls_and_received_header_names_tls(stack: MaaStack) -> None:
    from tests.integration.pop3.maa_pop3_harness import client_tls_context

    client = lmtp(stack)
    client.ehlo("mx.example.org")  # smtplib.LMTP sends LHLO
    assert client.has_extn("starttls")
    code, text = client.starttls(context=client_tls_context())
    assert (code, text) == (220, b"2.0.0 Begin TLS negotiation now.")
    client.ehlo("mx.example.org")
    assert not client.has_extn("starttls")
    client.docmd("MAIL", "FROM:<a@example.org>")
    client.docmd("RCPT", "TO:<alice>")
    ((code, _),) = send_data(client, b"Subject: tls\r\n\r\nx\r\n", 1)
    assert code == 250
    client.quit()
    (stored,) = delivered(stack, "alice")
    added, _ = split_headers(stored)
    assert added[3].startswith(b"\t(using TLSv1.")
    assert added[4].endswith(b" with LMTPS")


def test_too_big_message_gets_a_reply_per_recipient(stack: MaaStack, monkeypatch: pytest.MonkeyPatch) -> None:
    from maa_server.protocols.lmtp import server

    monkeypatch.setattr(server, "DATA_SIZE_LIMIT", 200)
    client = lmtp(stack)
    client.docmd("LHLO", "mx")
    client.docmd("MAIL", "FROM:<a@example.org>")
    client.docmd("RCPT", "TO:<alice>")
    client.docmd("RCPT", "TO:<bob>")
    replies = send_data(client, b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * 10 + b"y" * 300 + b"\r\n", 2)
    assert replies == [(552, b"5.2.3 Message size exceeds administrative limit")] * 2
    assert client.docmd("NOOP") == (250, b"2.0.0 OK")  # the connection is still in step
    client.quit()
    assert delivered(stack, "alice") == [] and delivered(stack, "bob") == []


def test_storage_failure_fails_only_that_recipient(stack: MaaStack) -> None:
    # alice's Maildir cannot take a new file (tmp/ is not a directory)
    tmp = stack.maildir("alice") / "tmp"
    tmp.rmdir()
    tmp.write_bytes(b"")
    client = lmtp(stack)
    client.docmd("LHLO", "mx")
    client.docmd("MAIL", "FROM:<a@example.org>")
    client.docmd("RCPT", "TO:<alice>")
    client.docmd("RCPT", "TO:<bob>")
    replies = send_data(client, b"Subject: partial\r\n\r\nx\r\n", 2)
    assert replies[0][0] == 451 and replies[0][1].startswith(b"4.2.0 <alice> ")
    assert replies[1][0] == 250 and replies[1][1].startswith(b"2.0.0 <bob> ")
    client.quit()
    assert delivered(stack, "alice") == []  # no partial file anywhere
    assert len(delivered(stack, "bob")) == 1


@pytest.mark.parametrize(("setting", "expected"), [
    ("original", b"Delivered-To: orig@example.org"),
    ("final", b"Delivered-To: alice+tag"),
    ("none", None),
])
def test_hdr_delivery_address(tmp_path: Path, setting: str, expected: bytes | None) -> None:
    stack = MaaStack(tmp_path, extra_config=f"lmtp_hdr_delivery_address = {setting}").start()
    try:
        client = lmtp(stack)
        client.docmd("LHLO", "mx")
        client.docmd("MAIL", "FROM:<a@example.org>")
        # ORCPT is xtext (RFC 3461 section 4): +40 is "@"
        assert client.docmd("RCPT", "TO:<alice+tag> ORCPT=rfc822;orig+40example.org") == (250, b"2.1.5 OK")
        send_data(client, b"Subject: h\r\n\r\nx\r\n", 1)
        client.quit()
        (stored,) = delivered(stack, "alice")
        added, _ = split_headers(stored)
        delivered_to = [h for h in added if h.startswith(b"Delivered-To:")]
        assert delivered_to == ([expected] if expected else [])
        received = b"\n".join(added)
        assert (b"\tfor <" in received) == (expected is not None)
    finally:
        stack.stop()


def test_delivery_shows_up_in_imap_idle(stack: MaaStack) -> None:
    """Issue 7: an LMTP delivery appears in the IDLE session of that user
    (RFC 2177) without the client doing anything."""
    import socket

    sock = socket.create_connection(("127.0.0.1", stack.imap_port), timeout=10)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"* OK")

    def command(tag: bytes, text: bytes) -> list[bytes]:
        sock.sendall(tag + b" " + text + b"\r\n")
        lines = []
        while not (line := reader.readline()).startswith(tag + b" "):
            lines.append(line)
        assert line.startswith(tag + b" OK"), line
        return lines

    command(b"a1", b"LOGIN alice " + PASSWORD.encode())
    assert any(line.startswith(b"* 0 EXISTS") for line in command(b"a2", b"SELECT INBOX"))
    sock.sendall(b"a3 IDLE\r\n")
    assert reader.readline().startswith(b"+ ")
    _lmtp_deliver(stack)
    assert_idle_sees(sock, reader, b"* 1 EXISTS\r\n", b"a3")
    command(b"a4", b"LOGOUT")
    sock.close()
