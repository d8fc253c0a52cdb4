"""The enotify extension (RFC 5435) with its one method, mailto (RFC 5436):
URI checks at compile time and the notification mail, as Pigeonhole 0.5.19
words and builds them (observed with a recording sendmail_path). No I/O."""

from __future__ import annotations

import email.utils
import os
import re
import time
from dataclasses import dataclass
from email.header import Header
from urllib.parse import unquote

from maa_server.sieve.message import SieveMessage
from maa_server.sieve.replies import X_SIEVE, OutgoingMail

METHODS = ("mailto",)
DEFAULT_BODY = "Notification of new message."
# RFC 5435 3.4: 1 high, 2 normal (the default), 3 low; Pigeonhole's headers.
_IMPORTANCE = {"1": ("1 (Highest)", "High"), "2": ("3 (Normal)", "Normal"), "3": ("5 (Lowest)", "Low")}
# RFC 6068 2: what may appear unencoded in the to part (no ',' between
# addresses inside one URI: Pigeonhole insists on %2C).
_TO_CHARS = re.compile(r"[A-Za-z0-9!$'*+\-.=^_`{|}~@%;:()\[\]/?&]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Headers a mailto URI may not set (RFC 5436 2.2 / Pigeonhole uri-mailto.c).
_RESERVED = {"auto-submitted", "received", "message-id", "data", "bcc", "in-reply-to",
             "references", "resent-date", "resent-from", "resent-sender", "resent-to",
             "resent-cc", "resent-bcc", "resent-msg-id", "from", "sender"}


@dataclass(frozen=True)
class MailtoUri:
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Notify:
    """One notify action (RFC 5435 3)."""

    method: str
    from_: str = ""
    importance: str = "2"
    options: tuple[str, ...] = ()
    message: str = ""


def method_error(uri: str) -> str:
    """Pigeonhole's compile-time complaint about a notify method, or ""."""
    m = _SCHEME.match(uri)
    if not m:
        return f"notify command: invalid method '{uri}'."
    scheme = m.group(1).lower()
    if scheme not in METHODS:
        return f"notify command: invalid method '{scheme}'."
    try:
        parse_mailto(uri)
    except ValueError as exc:
        return f"notify command: mailto URI: {exc}."
    return ""


def parse_mailto(uri: str) -> MailtoUri:
    """RFC 6068; raises ValueError with Pigeonhole's wording."""
    rest = uri[len("mailto:"):]
    to_part, _, query = rest.partition("?")
    for ch in to_part:
        if ch == ",":
            raise ValueError("invalid character ',' in 'to' part")
        if not _TO_CHARS.match(ch):
            raise ValueError(f"invalid character '{ch}' in 'to' part")
    to = [a.strip() for a in unquote(to_part).split(",") if a.strip()]
    cc: list[str] = []
    subject, body = "", ""
    headers: list[tuple[str, str]] = []
    for field in query.split("&") if query else []:
        name, eq, value = field.partition("=")
        if not eq:
            raise ValueError(f"invalid header field '{name}'")
        name, value = unquote(name), unquote(value)
        lower = name.lower()
        if lower == "to":
            to.extend(a.strip() for a in value.split(",") if a.strip())
        elif lower == "cc":
            cc.extend(a.strip() for a in value.split(",") if a.strip())
        elif lower == "subject":
            subject = value
        elif lower == "body":
            body = value
        elif lower not in _RESERVED:
            headers.append((name, value))
    for address in (*to, *cc):
        if "@" not in address:
            raise ValueError(f"invalid recipient '{address}'")
    if not to:
        raise ValueError("no recipients specified")
    return MailtoUri(tuple(to), tuple(cc), subject, body, tuple(headers))


def _charset(text: str) -> str:
    return "us-ascii" if text.isascii() else "utf-8"


def notify_mail(notify: Notify, message: SieveMessage, *, owner: str, postmaster: str,
                hostname: str) -> OutgoingMail:
    """The notification, from :from or the postmaster, to the URI's to + cc."""
    uri = parse_mailto(notify.method)
    original_subject = (message.headers("subject") or [""])[0]
    subject = notify.message or uri.subject or f"Notification: {original_subject}"
    body = uri.body or DEFAULT_BODY
    sender_header = notify.from_ or f"Postmaster <{postmaster}>"
    envelope_from = email.utils.parseaddr(notify.from_)[1] if notify.from_ else postmaster
    priority, importance = _IMPORTANCE.get(notify.importance, _IMPORTANCE["2"])
    msgid = f"<dovecot-sieve-{time.time_ns() // 1000}-{os.getpid()}-{os.urandom(3).hex()}@{hostname}>"
    lines = [X_SIEVE, f"Message-ID: {msgid}", f"Date: {email.utils.formatdate(localtime=True)}",
             f"Subject: {subject if subject.isascii() else Header(subject, 'utf-8').encode()}",
             f"From: {sender_header}", f"To: {', '.join(uri.to)}"]
    if uri.cc:
        lines.append(f"Cc: {', '.join(uri.cc)}")
    lines += [f"{name}: {value}" for name, value in uri.headers]
    lines += [f'Auto-Submitted: auto-notified; owner-email="{owner}"', "Precedence: bulk",
              f"X-Priority: {priority}", f"Importance: {importance}", "MIME-Version: 1.0",
              # Pigeonhole spells the default body's charset in capitals (observed).
              f"Content-Type: text/plain; charset={'US-ASCII' if not uri.body else _charset(body)}",
              f"Content-Transfer-Encoding: {'7bit' if body.isascii() else '8bit'}", "", body]
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    return OutgoingMail(envelope_from, uri.to + uri.cc, data)
