"""The mails Sieve actions send, built as Pigeonhole 0.5 builds them (no I/O).

Shapes observed from Dovecot 2.3.19 + Pigeonhole 0.5.19 with a recording
`sendmail_path` (tests/integration/sieve): a redirect is the delivered message
without `Return-Path:` and with `X-Sieve:` / `X-Sieve-Redirected-From:` in
front (src/lib-sieve/cmd-redirect.c); a vacation reply carries
`Auto-Submitted: auto-replied (vacation)` (RFC 5230 5.2-5.6,
ext-vacation.c); a rejection is an RFC 3798 MDN with the original message
attached (plugins/lda-sieve, sieve-actions.c sieve_action_reject_mail()).
"""

from __future__ import annotations

import email.utils
import os
import re
import time
from dataclasses import dataclass
from email.header import Header

from maa_server.sieve.message import SieveMessage

X_SIEVE = "X-Sieve: Pigeonhole Sieve 0.5.19"
_RETURN_PATH = re.compile(rb"\AReturn-Path:[^\n]*\n(?:[ \t][^\n]*\n)*", re.IGNORECASE)


@dataclass(frozen=True)
class OutgoingMail:
    """One message to hand to sendmail / the submission host."""

    sender: str  # the envelope MAIL FROM; "" for the null sender `<>`
    recipients: tuple[str, ...]
    data: bytes  # LF line ends (sendmail converts; SMTP sending converts to CRLF)


def _message_id(hostname: str) -> str:
    return f"<dovecot-sieve-{time.time_ns() // 1000}-{os.getpid()}-{os.urandom(3).hex()}@{hostname}>"


def _date() -> str:
    return email.utils.formatdate(localtime=True)


def redirect_mail(data: bytes, mail_from: str, address: str, recipient: str) -> OutgoingMail:
    """RFC 5228 4.2: the message as received, to a new address, from the
    original envelope sender. Pigeonhole drops Return-Path and marks it."""
    body = _RETURN_PATH.sub(b"", data.replace(b"\r\n", b"\n"), count=1)
    head = f"{X_SIEVE}\nX-Sieve-Redirected-From: {recipient}\n".encode("utf-8", "surrogateescape")
    return OutgoingMail(mail_from, (address,), head + body)


def _encode_subject(subject: str) -> str:
    if subject.isascii():
        return subject
    return Header(subject, "utf-8").encode()


def vacation_mail(message: SieveMessage, *, sender: str, recipient: str, reason: str,
                  subject: str, from_: str, mime: bool, hostname: str) -> OutgoingMail:
    """RFC 5230 5: the reply goes to the envelope sender from the null sender;
    `To:` repeats the original From: when it is that sender, as Pigeonhole does."""
    to = f"<{sender}>"
    froms = message.headers("from")
    if froms and sender.lower() in {a.lower() for a in message.addresses("from")}:
        to = froms[0].strip()
    original_subject = (message.headers("subject") or [""])[0]
    subject = subject or f"Auto: {original_subject}"
    lines = [X_SIEVE, f"Message-ID: {_message_id(hostname)}", f"Date: {_date()}",
             f"From: {from_ or '<' + recipient + '>'}", f"To: {to}",
             f"Subject: {_encode_subject(subject)}"]
    msgid = (message.headers("message-id") or [""])[0].strip()
    if msgid:
        refs = (message.headers("references") or [""])[0].split()
        lines += [f"In-Reply-To: {msgid}", f"References: {' '.join(refs + [msgid])}"]
    lines += ["Auto-Submitted: auto-replied (vacation)", "Precedence: bulk",
              "X-Auto-Response-Suppress: All", "MIME-Version: 1.0"]
    if mime:
        # RFC 5230 4.8: the reason is a MIME entity, its headers included.
        text = "\n".join(lines) + "\n" + reason.replace("\r\n", "\n")
    else:
        lines += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        text = "\n".join(lines) + "\n\n" + reason.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return OutgoingMail("", (sender,), text.encode("utf-8", "surrogateescape"))


def reject_mail(data: bytes, *, sender: str, recipient: str, reason: str, postmaster: str,
                hostname: str) -> OutgoingMail:
    """RFC 5429 2.1 / RFC 3798: a disposition notification, `deleted`, with
    the human-readable reason and the original message."""
    message = SieveMessage(data)
    boundary = f"{os.getpid()}/{hostname}"
    subject = (message.headers("subject") or [""])[0]
    original_id = (message.headers("message-id") or [""])[0].strip()
    head = [f"Message-ID: {_message_id(hostname).replace('dovecot-sieve-', 'dovecot-')}",
            f"Date: {_date()}", f"From: Postmaster <{postmaster}>", f"To: <{sender}>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/report; report-type=disposition-notification;",
            f'\tboundary="{boundary}"', f"Subject: {_encode_subject('Rejected: ' + subject)}",
            "Auto-Submitted: auto-replied (rejected)", "Precedence: bulk", "",
            "This is a MIME-encapsulated message", "",
            f"--{boundary}", "Content-Type: text/plain; charset=utf-8",
            "Content-Disposition: inline", "Content-Transfer-Encoding: 8bit", "",
            f"Your message to <{recipient}> was automatically rejected:", reason.replace("\r\n", "\n"),
            f"--{boundary}", "Content-Type: message/disposition-notification", "",
            f"Reporting-UA: {hostname}; Dovecot Mail Delivery Agent",
            f"Final-Recipient: rfc822; {recipient}"]
    if original_id:
        head.append(f"Original-Message-ID: {original_id}")
    head += ["Disposition: automatic-action/MDN-sent-automatically; deleted", "",
             f"--{boundary}", "Content-Type: message/rfc822", "", ""]
    original = data.replace(b"\r\n", b"\n")
    tail = f"\n--{boundary}--\n".encode()
    text = "\n".join(head).encode("utf-8", "surrogateescape")
    return OutgoingMail("", (sender,), text + original + (b"" if original.endswith(b"\n") else b"\n") + tail)
