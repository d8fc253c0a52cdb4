"""Delivery of one message to one user: shared by LMTP and maa-lda.

What Dovecot's LMTP adds before saving (src/lmtp/lmtp-local.c,
lmtp_local_add_headers(), spec 8.4): `Return-Path:`, `Delivered-To:` (one
recipient only) and a `Received:` trace header. dovecot-lda adds none of
them (observed: `dovecot-lda -f x -d alice` stores the message unchanged).
The message is then saved through `MailStore.deliver`, the one entry point
that wakes IDLE sessions.

`deliver_message()` is the one delivery function LMTP and maa-lda call (and
a per-user worker process may call): it runs Sieve when `sieve` is in the
protocol's `mail_plugins`, else saves into the requested mailbox.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from maa_server.auth.interface import UserInfo
from maa_server.logs import MailLog
from maa_server.storage.interface import (
    MailboxError,
    MailStore,
    NoSuchMailbox,
    StorageFull,
)

# Only CRLF pairs become LF: a lone CR is message content (Dovecot's
# maildir save path, i_stream_create_lf(), does the same).
if TYPE_CHECKING:
    from maa_server.config import Config

_CRLF = re.compile(rb"\r\n")
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)", re.IGNORECASE | re.MULTILINE)
_HOSTNAME_OK = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)$")


class DeliveryFailed(Exception):
    """Saving failed; `temporary` says 4xx/EX_TEMPFAIL vs 5xx."""

    def __init__(self, message: str, temporary: bool, quota: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.quota = quota


def disk_full_failure() -> DeliveryFailed:
    """A write that failed with ENOSPC/EDQUOT. Dovecot 2.3.19 (observed,
    Maildir on a full tmpfs) treats it as a critical storage error, not as a
    quota refusal: LMTP `451 4.2.0 <rcpt> Internal error occurred. Refer to
    server log for more information. [YYYY-MM-DD HH:MM:SS]` whatever
    quota_full_tempfail says, dovecot-lda exit 75; the MTA retries later."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return DeliveryFailed("Internal error occurred. Refer to server log for more information. "
                          f"[{stamp}]", temporary=True)


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """What the Received: header says about the LMTP transaction."""

    lhlo_name: str = ""
    client_ip: str = ""  # "" for UNIX-socket clients
    tls_description: str = ""  # "TLSv1.3 with cipher ... (256/256 bits)", or ""
    hostname: str = "localhost"
    transaction_id: str = ""
    protocol: str = "LMTP"


def to_lf(data: bytes) -> bytes:
    return _CRLF.sub(b"\n", data) if b"\r\n" in data else data


def message_id(data: bytes) -> str:
    """deliver_log_format's %m: the Message-ID header or `unspecified`."""
    head_end = data.find(b"\n\n")
    crlf_end = data.find(b"\r\n\r\n")
    ends = [e for e in (head_end, crlf_end) if e >= 0]
    header = data[:min(ends)] if ends else data
    match = _MESSAGE_ID.search(header)
    if not match:
        return "unspecified"
    value = re.sub(rb"\r?\n[ \t]", b" ", match.group(1)).strip()
    return value.decode("utf-8", "replace") or "unspecified"


def received_header(trace: TraceInfo, mail_from: str, rcpt: str | None,
                    now: datetime | None = None) -> bytes:
    """Dovecot's Received: (spec 8.4): continuation lines start with a TAB,
    `([ip])` only for TCP clients, `(using ...)` only with TLS, `for <..>`
    only with one recipient."""
    name = trace.lhlo_name if trace.lhlo_name and _HOSTNAME_OK.match(trace.lhlo_name) else "unknown"
    first = f"Received: from {name}"
    if trace.client_ip:
        first += f" ([{trace.client_ip}])"
    lines = [first]
    if trace.tls_description:
        lines.append(f"\t(using {trace.tls_description})")
    lines.append(f"\tby {trace.hostname} with {trace.protocol}")
    lines.append(f"\tid {trace.transaction_id}")
    date = email.utils.format_datetime((now or datetime.now()).astimezone())
    if rcpt is not None:
        lines.append(f"\t(envelope-from <{mail_from}>)")
        lines.append(f"\tfor <{rcpt}>; {date}")
    else:
        lines.append(f"\t(envelope-from <{mail_from}>); {date}")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def lmtp_headers(mail_from: str, delivered_to: str | None, trace: TraceInfo | None,
                 single_rcpt: str | None, now: datetime | None = None) -> bytes:
    """Return-Path, Delivered-To (when given), Received (when `trace`)."""
    out = f"Return-Path: <{mail_from}>\n".encode("utf-8", "surrogateescape")
    if delivered_to is not None:
        out += f"Delivered-To: {delivered_to}\n".encode("utf-8", "surrogateescape")
    if trace is not None:
        out += received_header(trace, mail_from, single_rcpt, now)
    return out


@dataclass(frozen=True, slots=True)
class Delivered:
    mailbox: str
    uid: int


async def deliver_to_store(store: MailStore, data: bytes, mailbox: str, log: MailLog,
                           msgid: str, autocreate: bool = False,
                           autosubscribe: bool = False) -> Delivered:
    """Save `data` (LF line ends) into `mailbox`, falling back to INBOX when
    it does not exist and lda_mailbox_autocreate is off, and log as
    Dovecot's deliver_log_format does (`msgid=<..>: saved mail to INBOX`)."""
    target = mailbox or "INBOX"
    created = False
    if target.upper() != "INBOX":
        try:
            await store.open_mailbox(target)
        except NoSuchMailbox:
            if autocreate:
                created = True
            else:
                log.info(f"msgid={msgid}: save failed to open mailbox {target}: "
                         f"Mailbox doesn't exist: {target}")
                target = "INBOX"
        except MailboxError as exc:
            log.info(f"msgid={msgid}: save failed to open mailbox {target}: {exc}")
            target = "INBOX"
    try:
        uid = await store.deliver(data, target, create=created)
        if created and autosubscribe:
            await store.subscribe(target)
    except StorageFull as exc:
        log.info(f"msgid={msgid}: save failed to {target}: {exc or 'Quota exceeded'}")
        raise disk_full_failure() from exc
    except (MailboxError, OSError) as exc:
        log.error(f"msgid={msgid}: save failed to {target}: {exc}")
        raise DeliveryFailed("Internal error occurred. Refer to server log for more information.",
                             temporary=True) from exc
    if target.upper() == "INBOX":
        target = "INBOX"
    log.info(f"msgid={msgid}: saved mail to {target}")
    return Delivered(target, uid)


@dataclass(frozen=True, slots=True)
class DeliveryEnvelope:
    """One recipient's delivery request."""

    mail_from: str  # the reverse path without <>; "" for the null sender
    rcpt_to: str  # the final recipient address (Sieve's envelope "to")
    orig_rcpt: str = ""  # ORCPT / maa-lda -a, when known
    mailbox: str = "INBOX"  # where a plain delivery / Sieve's keep saves
    protocol: str = "lmtp"  # "lmtp" or "lda": selects `protocol {}` settings
    reject_inline: bool = False  # maa-lda -e: report a Sieve reject instead of mailing it


@dataclass(slots=True)
class DeliveryResult:
    stored: list[Delivered] = field(default_factory=list)  # empty: discarded or sent away
    rejected: str | None = None  # Sieve's reject reason when `reject_inline`


def sieve_enabled(config: Config, protocol: str) -> bool:
    plugins = str(config.get("mail_plugins", protocol=protocol) or "")
    return "sieve" in plugins.replace(",", " ").split()


async def deliver_message(config: Config, user: UserInfo, data: bytes, envelope: DeliveryEnvelope,
                          log: MailLog, store: MailStore | None = None) -> DeliveryResult:
    """Deliver `data` (LF line ends, delivery headers already added) to
    `user`: through Sieve when enabled for the protocol, else into
    `envelope.mailbox`. Raises DeliveryFailed (temporary or not); errors
    opening the store propagate as MailboxError / OSError."""
    from maa_server.protocols.lmtp.settings import DeliverySettings

    settings = DeliverySettings.load(config, envelope.protocol)
    if store is None:
        from maa_server.storage.factory import open_mail_store

        store = await open_mail_store(config, user)
    msgid = message_id(data)
    if not sieve_enabled(config, envelope.protocol):
        saved = await deliver_to_store(store, data, envelope.mailbox, log, msgid,
                                       autocreate=settings.lda_mailbox_autocreate,
                                       autosubscribe=settings.lda_mailbox_autosubscribe)
        return DeliveryResult([saved])
    from maa_server.sieve.message import Envelope
    from maa_server.sieve_delivery import SieveConfig, SieveDelivery

    protocol = envelope.protocol
    sieve_config = SieveConfig.from_plugin(
        dict(config.plugin(protocol)), lambda name: config.get(name, protocol=protocol))
    run = SieveDelivery(store, user, sieve_config, log, msgid, default_mailbox=envelope.mailbox or "INBOX",
                        autocreate=settings.lda_mailbox_autocreate,
                        autosubscribe=settings.lda_mailbox_autosubscribe,
                        reject_inline=envelope.reject_inline, service=envelope.protocol)
    outcome = await run.deliver(data, Envelope(envelope.mail_from, envelope.rcpt_to))
    return DeliveryResult([Delivered(name, uid) for name, uid in outcome.stored], outcome.rejected)
