"""Issue 7 with a real MTA: a private Postfix (Debian's package) hands mail to
our LMTP listener on loopback, as it would to Dovecot's
(`virtual_transport` / `mailbox_transport = lmtp:inet:127.0.0.1:PORT`), and
the messages show up over IMAP. Skipped where postfix is not installed or we
are not root (CI installs it and runs as root, see .ci/run)."""

from __future__ import annotations

import imaplib
import pwd
import smtplib
import socket
from collections.abc import Iterator

import pytest

from tests.integration.pop3.maa_pop3_harness import PASSWORD, MaaStack
from tests.integration.postfix.private_postfix import (
    PrivatePostfix,
    postfix_missing_reason,
)

_missing = postfix_missing_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

BODY_8BIT = "Gr\u00fc\u00dfe aus Postfix, 8-bit \u00e9\u00e8".encode()
LONG_LINE = b"X-Long: " + b"z" * 1500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MaaStack]:
    # Bare user names in the userdb, full addresses from the MTA: the usual
    # Postfix + Dovecot site sets auth_username_format = %Ln.
    running = MaaStack(tmp_path_factory.mktemp("maa"),
                       extra_config="auth_failure_delay = 0\nauth_username_format = %Ln").start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def postfix(stack: MaaStack) -> Iterator[PrivatePostfix]:
    from maa_server.protocols.lmtp.server import start_lmtp

    instance = PrivatePostfix(lmtp_port=stack.lmtp_port, smtpd_port=free_port())
    owner = pwd.getpwnam("postfix")
    # `unix_listener lmtp { mode = 0600 user = postfix }`: only Postfix may connect
    unix = stack.run(start_lmtp(stack.ctx, path=str(instance.lmtp_socket), mode=0o600,
                                uid=owner.pw_uid, gid=owner.pw_gid))
    try:
        yield instance.start()
    finally:
        instance.stop()
        unix.close()


def imap_messages(stack: MaaStack, user: str, expected: int) -> list[bytes]:
    """The INBOX over IMAP once it holds `expected` messages (NOOP polling,
    bounded by the Postfix log wait that precedes it)."""
    with imaplib.IMAP4("127.0.0.1", stack.imap_port, timeout=10) as imap:
        imap.login(user, PASSWORD)
        typ, data = imap.select("INBOX")
        assert typ == "OK"
        count = int(data[0] or 0)
        for _ in range(200):
            if count >= expected:
                break
            _, untagged = imap.noop()
            exists = [int(x) for x in untagged if x and x.isdigit()]
            count = exists[-1] if exists else count
        assert count == expected
        typ, fetched = imap.fetch(f"1:{expected}", "(BODY.PEEK[])")
        assert typ == "OK"
        return [part[1] for part in fetched if isinstance(part, tuple)]


def test_sendmail_to_virtual_domain_shows_up_over_imap(stack: MaaStack, postfix: PrivatePostfix) -> None:
    message = (b"From: Sender <sender@example.net>\n"
               b"To: alice@example.org\n"
               b"Subject: via postfix sendmail\n"
               b"Message-ID: <pf-sendmail-1@example.net>\n"
               + LONG_LINE + b"\n"
               b"MIME-Version: 1.0\n"
               b"Content-Type: text/plain; charset=utf-8\n"
               b"Content-Transfer-Encoding: 8bit\n"
               b"\n" + BODY_8BIT + b"\n"
               b".a line starting with a dot\n")
    postfix.sendmail("sender@example.net", ["alice@example.org"], message)
    line = postfix.wait_for_log("to=<alice@example.org>")
    # Postfix's lmtp client got our per-recipient 250 (RFC 2033 section 4.2)
    assert "status=sent (250 2.0.0 <alice@example.org> " in line and " Saved)" in line, line
    assert f"[{postfix.lmtp_socket}], " in line, line  # relay=<our LMTP name>[socket]

    (stored,) = imap_messages(stack, "alice", 1)
    head, _, body = stored.partition(b"\r\n\r\n")
    headers = head.split(b"\r\n")
    # Ours first (spec 8.4), then Postfix's own Received, then the message.
    assert headers[0] == b"Return-Path: <sender@example.net>"
    assert headers[1] == b"Delivered-To: alice@example.org"
    assert headers[2] == b"Received: from mx.example.org"  # UNIX socket: no [ip]
    assert headers[3].startswith(b"\tby ") and headers[3].endswith(b" with LMTP")
    assert headers[5] == b"\t(envelope-from <sender@example.net>)"
    assert headers[6].startswith(b"\tfor <alice@example.org>; ")
    assert headers[7] == b"Received: by mx.example.org (Postfix, from userid 0)"
    assert b"Subject: via postfix sendmail" in headers
    assert LONG_LINE in headers  # a 1500-octet header line, unfolded and whole
    assert body == BODY_8BIT + b"\r\n.a line starting with a dot\r\n"


def test_smtp_to_local_domain_through_mailbox_transport(stack: MaaStack, postfix: PrivatePostfix) -> None:
    with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=10) as smtp:
        smtp.ehlo("client.example.net")
        refused = smtp.sendmail("someone@example.net", ["bob@localhost"],
                                b"Subject: via smtpd and local(8)\r\n"
                                b"Message-ID: <pf-smtp-1@example.net>\r\n\r\nhello bob\r\n")
        assert refused == {}
    line = postfix.wait_for_log("to=<bob@localhost>")
    assert "status=sent (250 2.0.0 <bob@localhost> " in line, line
    assert f"relay=127.0.0.1[127.0.0.1]:{stack.lmtp_port}" in line
    (stored,) = imap_messages(stack, "bob", 1)
    assert stored.startswith(b"Return-Path: <someone@example.net>\r\nDelivered-To: bob@localhost\r\n")
    assert stored.endswith(b"\r\n\r\nhello bob\r\n")


def test_unknown_user_is_refused_at_rcpt_and_bounced_by_postfix(stack: MaaStack,
                                                                postfix: PrivatePostfix) -> None:
    # Null sender: the bounce Postfix makes is dropped instead of queued.
    with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=10) as smtp:
        smtp.ehlo("client.example.net")
        assert smtp.sendmail("<>", ["nobody@example.org"], b"Subject: nobody\r\n\r\nx\r\n") == {}
    line = postfix.wait_for_log("to=<nobody@example.org>")
    # Our 550 at RCPT time (spec 8.3) is a permanent failure for Postfix.
    assert "status=bounced" in line, line
    assert "said: 550 5.1.1 <nobody@example.org> User doesn't exist: nobody" in line, line
