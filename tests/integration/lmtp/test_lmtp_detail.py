"""recipient_delimiter with several characters and
lmtp_save_to_detail_mailbox, as Dovecot 2.3.19 files them (observed with
the real lmtp: same replies, same folders, same Delivered-To)."""

from __future__ import annotations

import smtplib
from pathlib import Path

from tests.integration.pop3.maa_pop3_harness import MaaStack

DETAIL_CONFIG = ("auth_failure_delay = 0\nrecipient_delimiter = +-\n"
                 "lmtp_save_to_detail_mailbox = yes\n")


def deliver_each(stack: MaaStack, recipients: list[str]) -> None:
    client = smtplib.LMTP("127.0.0.1", stack.lmtp_port)
    client.docmd("LHLO", "mx")
    for rcpt in recipients:
        client.docmd("MAIL", "FROM:<a@example.org>")
        assert client.docmd("RCPT", f"TO:<{rcpt}>") == (250, b"2.1.5 OK")
        assert client.docmd("DATA")[0] == 354
        client.send(f"Subject: {rcpt}\r\n\r\nx\r\n.\r\n".encode())
        code, text = client.getreply()
        assert code == 250 and text.startswith(f"2.0.0 <{rcpt}> ".encode()), text
    client.quit()


def filed(stack: MaaStack) -> dict[str, list[bytes]]:
    """folder -> the Delivered-To lines of the messages in its new/."""
    out: dict[str, list[bytes]] = {}
    for path in sorted(stack.maildir("alice").glob("**/new/*")):
        folder = path.parent.parent.name
        out.setdefault(folder, []).append(path.read_bytes().split(b"\n")[1])
    return out


def test_any_delimiter_character_splits_at_the_first(tmp_path: Path) -> None:
    stack = MaaStack(tmp_path, extra_config=DETAIL_CONFIG + "lda_mailbox_autocreate = yes").start()
    try:
        deliver_each(stack, ["alice-foo", "alice+x-y", "alice-x+y", "Alice+Upper", "alice+"])
    finally:
        stack.stop()
    assert filed(stack) == {
        ".Upper": [b"Delivered-To: Alice+Upper"],
        ".foo": [b"Delivered-To: alice-foo"],
        ".x+y": [b"Delivered-To: alice-x+y"],
        ".x-y": [b"Delivered-To: alice+x-y"],
        "Maildir": [b"Delivered-To: alice+"],  # an empty detail is INBOX
    }


def test_missing_detail_mailbox_without_autocreate_is_inbox(tmp_path: Path) -> None:
    stack = MaaStack(tmp_path, extra_config=DETAIL_CONFIG).start()
    try:
        deliver_each(stack, ["alice+nosuchbox"])
    finally:
        stack.stop()
    assert filed(stack) == {"Maildir": [b"Delivered-To: alice+nosuchbox"]}
