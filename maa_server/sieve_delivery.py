"""Sieve at delivery, as Pigeonhole's LMTP/LDA plugin runs it: the
`sieve_before` scripts, then the user's active script (or `sieve_default`),
then `sieve_after`; their actions are carried out here: stores through
`delivery.deliver_to_store`, redirect / reject / vacation through
`sendmail_path` (or `submission_host`). A script that fails to compile or
run never loses the message: it is kept in the default mailbox."""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from maa_server.auth.interface import UserInfo
from maa_server.delivery import Delivered, deliver_to_store
from maa_server.logs import MailLog
from maa_server.sieve import SieveError, compile_script, run
from maa_server.sieve.interpreter import Action, RunLimits
from maa_server.sieve.message import Envelope, SieveMessage
from maa_server.sieve.scripts import ScriptStore, parse_location
from maa_server.sieve.signatures import EXTENSIONS, OPTIONAL_EXTENSIONS
from maa_server.sieve.validator import Script
from maa_server.storage.interface import MailStore

DUPLICATES_FILE = ".maa-sieve-duplicates"  # our vacation/duplicate tracking (Dovecot's is binary)


@dataclass
class SieveConfig:
    """The `plugin {}` settings Pigeonhole reads (sieve_*)."""

    location: str = "file:~/sieve;active=~/.dovecot.sieve"
    default: str = ""
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    global_dir: str = ""
    max_actions: int = 32
    max_redirects: int = 4
    extensions: frozenset[str] = EXTENSIONS
    vacation_min_period: int = 86400
    vacation_max_period: int = 0
    vacation_default_period: int = 7 * 86400
    sendmail_path: str = "/usr/sbin/sendmail"
    submission_host: str = ""
    postmaster_address: str = ""

    @classmethod
    def from_plugin(cls, plugin: dict[str, str], settings_get: Callable[[str], object]) -> "SieveConfig":
        def numbered(base: str) -> list[str]:
            out = [plugin[base]] if plugin.get(base) else []
            n = 2
            while plugin.get(f"{base}{n}"):
                out.append(plugin[f"{base}{n}"])
                n += 1
            return out

        from maa_server.config.values import parse_time

        def seconds(name: str, default: int) -> int:
            try:
                return int(parse_time(plugin[name])) if plugin.get(name) else default
            except ValueError:
                return default

        exts = set(EXTENSIONS)
        for word in plugin.get("sieve_extensions", "").split():
            if word.startswith("+") and word[1:] in EXTENSIONS | OPTIONAL_EXTENSIONS:
                exts.add(word[1:])
            elif word.startswith("-"):
                exts.discard(word[1:])
        return cls(
            location=plugin.get("sieve", cls.location),
            default=plugin.get("sieve_default", ""),
            before=numbered("sieve_before"),
            after=numbered("sieve_after"),
            global_dir=plugin.get("sieve_global", plugin.get("sieve_global_dir", "")),
            max_actions=int(plugin.get("sieve_max_actions", 32) or 32),
            max_redirects=int(plugin.get("sieve_max_redirects", 4) or 4),
            extensions=frozenset(exts),
            vacation_min_period=seconds("sieve_vacation_min_period", 86400),
            vacation_max_period=seconds("sieve_vacation_max_period", 0),
            vacation_default_period=seconds("sieve_vacation_default_period", 7 * 86400),
            sendmail_path=str(settings_get("sendmail_path") or "/usr/sbin/sendmail"),
            submission_host=str(settings_get("submission_host") or ""),
            postmaster_address=str(settings_get("postmaster_address") or ""),
        )


@dataclass
class SieveDelivery:
    """One message for one user."""

    store: MailStore
    user: UserInfo
    config: SieveConfig
    log: MailLog
    msgid: str
    default_mailbox: str = "INBOX"

    def _expand(self, path: str) -> Path:
        return Path(os.path.join(self.user.home, path[2:]) if path.startswith("~/") else path)

    def _load(self, path: Path, name: str) -> Script | None:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return self._compile(text, name)

    def _compile(self, text: str, name: str) -> Script | None:
        try:
            return compile_script(text, name, self.config.extensions)
        except SieveError as exc:
            for line in exc.messages:
                self.log.error(f"sieve: {name}: {line}")
            return None

    def _scripts(self) -> list[Script]:
        """Compiled in order; a script with errors is skipped and logged."""
        out: list[Script] = []
        for path in self.config.before:
            s = self._load(self._expand(path), Path(path).stem)
            if s:
                out.append(s)
        script_dir, active = parse_location(self.config.location, self.user.home)
        personal = ScriptStore(script_dir, active).active_script_text()
        if personal is not None:
            s = self._compile(personal[1], personal[0])
            if s:
                out.append(s)
        elif self.config.default:
            s = self._load(self._expand(self.config.default), Path(self.config.default).stem)
            if s:
                out.append(s)
        for path in self.config.after:
            s = self._load(self._expand(path), Path(path).stem)
            if s:
                out.append(s)
        return out

    def _include(self, name: str, location: str) -> Script | None:
        if location == "global":
            base = self._expand(self.config.global_dir) if self.config.global_dir else None
        else:
            base = parse_location(self.config.location, self.user.home)[0]
        if base is None or "/" in name:
            return None
        return self._load(base / f"{name}.sieve", name)

    async def deliver(self, data: bytes, envelope: Envelope) -> list[Delivered]:
        """Run the scripts and carry out their actions; returns what was stored."""
        scripts = await asyncio.to_thread(self._scripts)
        if not scripts:
            return [await deliver_to_store(self.store, data, self.default_mailbox, self.log, self.msgid)]
        message = SieveMessage(data, envelope)
        tracker = _DuplicateTracker(Path(self.user.home) / DUPLICATES_FILE) if self.user.home else None
        actions: list[Action] = []
        keep = True
        keep_flags: tuple[str, ...] = ()
        for script in scripts:
            result = await asyncio.to_thread(
                run, script, message,
                mailbox_exists=lambda name: True,
                include=self._include,
                duplicate=(tracker.check_and_mark if tracker else (lambda key, seconds: False)),
                limits=RunLimits(self.config.max_actions, self.config.max_redirects))
            if result.error:
                # Pigeonhole: a failing script falls back to keeping the message.
                self.log.error(f"sieve: {script.name}: {result.error}; keeping the message")
                keep = True
                break
            actions.extend(result.actions)
            # Every script must leave the implicit keep for it to happen.
            keep = keep and result.implicit_keep
            keep_flags = result.keep_flags or keep_flags
        return await self._execute(data, envelope, actions, keep, keep_flags, tracker)

    async def _execute(self, data: bytes, envelope: Envelope, actions: list[Action], keep: bool,
                       keep_flags: tuple[str, ...], tracker: "_DuplicateTracker | None") -> list[Delivered]:
        stored: list[Delivered] = []
        done: set[str] = set()
        for action in actions:
            if action.kind == "store" and action.mailbox not in done:
                done.add(action.mailbox)
                stored.append(await self._store(data, action.mailbox, action.flags, action.create))
            elif action.kind == "redirect":
                await self._send(envelope.mail_from, [action.address], data, "redirect")
                self.log.info(f"sieve: msgid={self.msgid}: forwarded to <{action.address}>")
            elif action.kind in ("reject", "ereject"):
                await self._reject(data, envelope, action.reason)
            elif action.kind == "vacation" and action.vacation is not None:
                await self._vacation(data, envelope, action, tracker)
        if not actions and not keep:
            self.log.info(f"sieve: msgid={self.msgid}: marked message to be discarded if not "
                          "explicitly delivered (discard action)")
        if keep and self.default_mailbox not in done:
            stored.append(await self._store(data, self.default_mailbox, keep_flags, False))
        return stored

    async def _store(self, data: bytes, mailbox: str, flags: tuple[str, ...], create: bool) -> Delivered:
        delivered = await deliver_to_store(self.store, data, mailbox, self.log, self.msgid,
                                           autocreate=create)
        if flags:
            box = await self.store.open_mailbox(delivered.mailbox)
            await box.store_flags([delivered.uid], flags, "add")
        return delivered

    async def _send(self, sender: str, recipients: list[str], data: bytes, what: str) -> None:
        crlf = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        try:
            if self.config.submission_host:
                await asyncio.to_thread(_smtp_send, self.config.submission_host, sender, recipients, crlf)
            else:
                proc = await asyncio.create_subprocess_exec(
                    self.config.sendmail_path, "-i", "-f", sender or "<>", "--", *recipients,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE)
                _, err = await proc.communicate(data.replace(b"\r\n", b"\n"))
                if proc.returncode != 0:
                    raise OSError(err.decode(errors="replace").strip() or f"exit {proc.returncode}")
        except (OSError, smtplib.SMTPException) as exc:
            self.log.error(f"sieve: msgid={self.msgid}: failed to send {what} message: {exc}")

    async def _reject(self, data: bytes, envelope: Envelope, reason: str) -> None:
        if not envelope.mail_from:
            self.log.info(f"sieve: msgid={self.msgid}: not sending rejection to the null sender")
            return
        sender = self.config.postmaster_address or f"postmaster@{_domain(envelope.rcpt_to)}"
        original = SieveMessage(data).headers("subject")
        body = (f"From: Mail Delivery Subsystem <{sender}>\r\nTo: <{envelope.mail_from}>\r\n"
                f"Subject: Automatically rejected mail\r\nAuto-Submitted: auto-replied (rejected)\r\n"
                f"Date: {email.utils.formatdate(localtime=True)}\r\n"
                f"Message-ID: {email.utils.make_msgid()}\r\nMIME-Version: 1.0\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                f"Your message to <{envelope.rcpt_to}> was automatically rejected:\r\n{reason}\r\n"
                + (f"\r\nOriginal subject: {original[0]}\r\n" if original else ""))
        await self._send("", [envelope.mail_from], body.encode(), "rejection")
        self.log.info(f"sieve: msgid={self.msgid}: rejected message from <{envelope.mail_from}> ({reason})")

    async def _vacation(self, data: bytes, envelope: Envelope, action: Action,
                        tracker: "_DuplicateTracker | None") -> None:
        vac = action.vacation
        assert vac is not None
        message = SieveMessage(data, envelope)
        sender = envelope.mail_from
        skip = _vacation_skip_reason(message, sender, [envelope.rcpt_to, *vac.addresses])
        if skip:
            self.log.info(f"sieve: msgid={self.msgid}: discarded vacation reply to <{sender}> ({skip})")
            return
        period = vac.seconds if vac.seconds is not None else vac.days * 86400
        period = max(period, self.config.vacation_min_period) if period else 0
        if self.config.vacation_max_period:
            period = min(period, self.config.vacation_max_period)
        key = f"vacation\0{vac.handle or vac.reason + vac.subject}\0{sender.lower()}"
        if tracker is not None and period and tracker.check_and_mark(key, period):
            self.log.info(f"sieve: msgid={self.msgid}: discarded duplicate vacation response "
                          f"to <{sender}>")
            return
        subject = vac.subject or "Auto: " + (message.headers("subject") or [""])[0]
        msgid = (message.headers("message-id") or [""])[0]
        reply = (f"From: {vac.from_ or '<' + envelope.rcpt_to + '>'}\r\nTo: <{sender}>\r\n"
                 f"Subject: {subject}\r\nAuto-Submitted: auto-replied (vacation)\r\nPrecedence: bulk\r\n"
                 f"Date: {email.utils.formatdate(localtime=True)}\r\n"
                 f"Message-ID: {email.utils.make_msgid()}\r\n"
                 + (f"In-Reply-To: {msgid}\r\nReferences: {msgid}\r\n" if msgid else "")
                 + "MIME-Version: 1.0\r\n"
                 + ("" if vac.mime else "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n")
                 + ("" if vac.mime else "\r\n") + vac.reason + "\r\n")
        await self._send("", [sender], reply.encode(), "vacation")
        self.log.info(f"sieve: msgid={self.msgid}: sent vacation response to <{sender}>")


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def _vacation_skip_reason(message: SieveMessage, sender: str, own: list[str]) -> str:
    """RFC 5230 4.5-4.6 and Pigeonhole's checks: no reply to the null sender,
    daemons, lists, bulk or auto-submitted mail, or mail not addressed to us."""
    if not sender:
        return "null sender"
    local = sender.split("@")[0].lower()
    if local in ("mailer-daemon", "listserv", "majordomo", "postmaster") or \
            local.startswith("owner-") or local.endswith("-request"):
        return "sender is a system address"
    auto = (message.headers("auto-submitted") or ["no"])[0].strip().lower()
    if auto and auto != "no":
        return "auto-submitted message"
    if any(message.headers(h) for h in ("list-id", "list-post", "list-unsubscribe")):
        return "mailing list message"
    if (message.headers("precedence") or [""])[0].strip().lower() in ("bulk", "list", "junk"):
        return "bulk message"
    ours = {a.lower() for a in own if a}
    addressed = {a.lower() for h in ("to", "cc", "bcc", "resent-to", "resent-cc")
                 for a in message.addresses(h)}
    if ours and not ours & addressed:
        return "not addressed to the recipient"
    return ""


def _smtp_send(host: str, sender: str, recipients: list[str], data: bytes) -> None:
    name, _, port = host.partition(":")
    with smtplib.SMTP(name, int(port or 25), timeout=30) as smtp:
        smtp.sendmail(sender, recipients, data)


class _DuplicateTracker:
    """Remembers (key -> expiry) in a small JSON file in the user's home, for
    vacation's once-per-period and the duplicate test (RFC 7352)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def check_and_mark(self, key: str, seconds: int) -> bool:
        now = time.time()
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            entries = {}
        entries = {k: v for k, v in entries.items() if v > now}
        seen = key in entries
        if not seen:
            entries[key] = now + seconds
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}")
            try:
                tmp.write_text(json.dumps(entries))
                os.replace(tmp, self.path)
            except OSError:
                pass
        return seen
