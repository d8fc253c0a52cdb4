"""Sieve at delivery, as Pigeonhole's LMTP/LDA plugin runs it
(plugins/lda-sieve/lda-sieve-plugin.c): the `sieve_before` scripts, the
user's active script (or `sieve_default` when there is none), then
`sieve_after`; then their actions are carried out: stores into the mail
store, redirect / reject / vacation through `sendmail_path` or
`submission_host`. A script that fails to compile or to run never loses
the message: it is kept in the default mailbox.

Log lines are Pigeonhole 0.5.19's, observed under Dovecot 2.3.19
(`sieve: msgid=<..>: fileinto action: stored mail into mailbox 'Work'`);
problems in the user's own script go to the user log file next to the
active script (`~/.dovecot.sieve.log`), as Pigeonhole writes them."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path

from maa_server.auth.interface import UserInfo
from maa_server.delivery import DeliveryFailed, disk_full_failure
from maa_server.logs import MailLog, get_log
from maa_server.sieve import SieveError, compile_script, run
from maa_server.sieve.duplicates import (
    DUPLICATES_FILE,
    DuplicateTracker,
    vacation_handle,
    vacation_id,
)
from maa_server.sieve.enotify import Notify, notify_mail
from maa_server.sieve.interpreter import Action, RunLimits, Vacation
from maa_server.sieve.message import Envelope, SieveMessage
from maa_server.sieve.replies import (
    OutgoingMail,
    redirect_mail,
    reject_mail,
    vacation_mail,
)
from maa_server.sieve.scripts import ScriptStore, parse_location
from maa_server.sieve.sendmail import SendError, send_mail
from maa_server.sieve.settings import SieveConfig
from maa_server.sieve.vacation import vacation_skip_reason
from maa_server.sieve.validator import Script
from maa_server.storage.interface import (
    MailboxError,
    MailStore,
    NoSuchMailbox,
    StorageFull,
)

USER_LOG_MAX = 10 * 1024  # Pigeonhole rotates the user log past 10 KiB (sieve-error.c)


@dataclass(frozen=True)
class _Loaded:
    script: Script
    path: str  # as log lines name it
    user_log: Path | None  # the personal script's log file; None for global scripts


@dataclass
class SieveOutcome:
    """What happened: mailboxes stored into, and a rejection to report
    inline (maa-lda -e) instead of mailing it."""

    stored: list[tuple[str, int]] = field(default_factory=list)
    rejected: str | None = None


@dataclass
class SieveDelivery:
    """Sieve for one message to one user. `deliver()` is the whole job."""

    store: MailStore
    user: UserInfo
    config: SieveConfig
    log: MailLog
    msgid: str
    default_mailbox: str = "INBOX"
    autocreate: bool = False  # lda_mailbox_autocreate
    autosubscribe: bool = False  # lda_mailbox_autosubscribe
    reject_inline: bool = False  # maa-lda -e: the caller reports the rejection
    service: str = "lmtp"  # the process log prefix for a sendmail program's stderr
    # The script whose log gets action failures: the personal one if it ran.
    _reporting: _Loaded | None = field(default=None, init=False, repr=False)

    # --- loading ------------------------------------------------------------

    def _expand(self, path: str) -> Path:
        if path.startswith("file:"):
            path = path[5:].split(";")[0]
        return Path(os.path.join(self.user.home, path[2:]) if path.startswith("~/") else path)

    def _global_paths(self, paths: list[str]) -> list[Path]:
        """A sieve_before/after value is a file or a directory of *.sieve
        files run in name order."""
        out: list[Path] = []
        for value in paths:
            path = self._expand(value)
            if path.is_dir():
                out.extend(sorted(p for p in path.iterdir() if p.suffix == ".sieve" and p.is_file()))
            else:
                out.append(path)
        return out

    def _compile_global(self, path: Path) -> _Loaded | None | bool:
        """None when the file is missing (skipped), False when it is broken."""
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.log.error(f"sieve: Failed to open script `{path}': {exc}")
            return False
        name = path.stem
        try:
            return _Loaded(compile_script(text, name, self.config.extensions), str(path), None)
        except SieveError as exc:
            # Global scripts report into the main log, without the `error:` marker.
            for line in _report_lines(exc):
                # ... and without the final period (observed).
                self.log.error(f"sieve: {name}: {line.replace('error: ', '', 1).removesuffix('.')}")
            self.log.error(f"sieve: Failed to compile script `{path}'")
            return False

    def _compile_personal(self) -> _Loaded | None | bool:
        script_dir, active = parse_location(self.config.location, self.user.home, self.config.legacy_dir)
        try:
            found = ScriptStore(script_dir, active).active_script_text()
        except OSError as exc:
            # Unreadable (permissions): counted as a broken script, so the
            # message is kept rather than bounced or lost.
            self.log.error(f"sieve: Failed to open script `{active}': {exc.strerror or exc}")
            return False
        if found is None:
            if not self.config.default:
                return None
            return self._compile_global(self._expand(self.config.default))
        name, text = found
        user_log = (self._expand(self.config.user_log) if self.config.user_log
                    else active.with_name(active.name + ".log"))
        try:
            return _Loaded(compile_script(text, name, self.config.extensions), str(active), user_log)
        except SieveError as exc:
            self._user_log(user_log, [f"{name}: {line}" for line in _report_lines(exc)])
            self.log.info(f"sieve: Failed to compile script `{active}' (view user logfile "
                          f"`{user_log}' for more information)")
            return False

    def _scripts(self) -> list[_Loaded] | None:
        """The scripts in order, or None when one fails to compile: then
        Pigeonhole runs none of them and keeps the message."""
        out: list[_Loaded] = []
        before = [self._compile_global(p) for p in self._global_paths(self.config.before)]
        personal = self._compile_personal()
        after = [self._compile_global(p) for p in self._global_paths(self.config.after)]
        for item in (*before, personal, *after):
            if item is False:
                return None
            if isinstance(item, _Loaded):
                out.append(item)
        return out

    def _include(self, name: str, location: str) -> Script | None:
        if location == "global":
            base = self._expand(self.config.global_dir) if self.config.global_dir else None
        else:
            base = parse_location(self.config.location, self.user.home, self.config.legacy_dir)[0]
        if base is None or "/" in name or name in ("", ".", ".."):
            return None
        try:
            text = (base / f"{name}.sieve").read_text("utf-8")
            return compile_script(text, name, self.config.extensions)
        except (OSError, UnicodeDecodeError, SieveError):
            return None

    def _user_log(self, path: Path | None, lines: list[str]) -> None:
        """Append to the user's Sieve log, rotated to `.log.0` when large."""
        if path is None:
            for line in lines:
                self.log.error(f"sieve: {line}")
            return
        stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
        try:
            if path.exists() and path.stat().st_size > USER_LOG_MAX:
                os.replace(path, path.with_name(path.name + ".0"))
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(f"sieve: info: started log at {stamp}.\n")
                fh.writelines(line + "\n" for line in lines)
        except OSError as exc:
            self.log.error(f"sieve: failed to write user log file {path}: {exc}")
            for line in lines:
                self.log.info(f"sieve: {line}")

    # --- running ------------------------------------------------------------

    def _tracker(self) -> DuplicateTracker | None:
        if not self.user.home:
            return None
        return DuplicateTracker(Path(self.user.home) / DUPLICATES_FILE, self.user.username)

    async def deliver(self, data: bytes, envelope: Envelope) -> SieveOutcome:
        scripts = await asyncio.to_thread(self._scripts)
        if scripts is None:
            return SieveOutcome([await self._keep(data, ())])
        if not scripts:
            return SieveOutcome([await self._plain_keep(data)])
        message = SieveMessage(data, envelope)
        tracker = self._tracker()
        actions: list[Action] = []
        keep: bool = True
        keep_flags: tuple[str, ...] = ()
        failed: _Loaded | None = None
        for loaded in scripts:
            result = await asyncio.to_thread(
                run, loaded.script, message, include=self._include,
                duplicate=(tracker.check_and_mark if tracker else (lambda key, seconds: False)),
                environment={"domain": envelope.rcpt_to.rpartition("@")[2], "host": self.config.host()},
                limits=RunLimits(self.config.max_actions, self.config.max_redirects),
                status_tests=self.config.status_tests)
            if result.error:
                await asyncio.to_thread(self._user_log, loaded.user_log,
                                        [f"{loaded.script.name}: {result.error}"])
                failed = loaded
                break
            # Pigeonhole's multiscript (sieve-script.c sieve_multiscript_run()):
            # an explicit keep only means "still kept"; the next script runs
            # while the message is kept and the last one decides the keep.
            explicit = [a for a in result.actions if a.kind == "store" and a.keep]
            actions.extend(a for a in result.actions if not (a.kind == "store" and a.keep))
            keep = result.implicit_keep or bool(explicit)
            keep_flags = explicit[0].flags if explicit else result.keep_flags
            if not keep:
                break
        if failed is not None:
            stored = [await self._keep(data, ())]
            self._log_failure(failed)
            return SieveOutcome(stored)
        self._reporting = next((s for s in scripts if s.user_log), scripts[-1])
        return await self._execute(data, envelope, message, actions, keep, keep_flags, tracker)

    def _where(self, failed: _Loaded) -> str:
        return (f"user logfile {failed.user_log} may reveal additional details"
                if failed.user_log else "see above for details")

    async def _action_error(self, line: str) -> None:
        """An action failed: the main log, and the user log of the script."""
        self.log.error(f"sieve: {line}")
        if self._reporting is not None and self._reporting.user_log is not None:
            await asyncio.to_thread(self._user_log, self._reporting.user_log, [f"error: {line}."])

    def _log_failure(self, failed: _Loaded) -> None:
        self.log.info(f"sieve: Execution of script {failed.path} failed, but implicit keep was "
                      f"successful ({self._where(failed)})")

    async def _execute(self, data: bytes, envelope: Envelope, message: SieveMessage,
                       actions: list[Action], keep: bool, keep_flags: tuple[str, ...],
                       tracker: DuplicateTracker | None) -> SieveOutcome:
        # Like Pigeonhole's result transaction: every store target is checked
        # before anything is saved or sent, so a failure keeps only a copy.
        for action in actions:
            if action.kind == "store" and not (action.create or self.autocreate) \
                    and not await self._exists(action.mailbox):
                assert self._reporting is not None
                line = (f"error: msgid={self.msgid}: fileinto action: failed to store into mailbox "
                        f"'{action.mailbox}': Mailbox doesn't exist: {action.mailbox}.")
                await asyncio.to_thread(self._user_log, self._reporting.user_log, [line])
                stored = [await self._keep(data, ())]
                self._log_failure(self._reporting)
                return SieveOutcome(stored)
        outcome = SieveOutcome()
        failed = False
        for action in actions:
            if action.kind == "store":
                if any(name == action.mailbox for name, _ in outcome.stored):
                    continue
                outcome.stored.append(await self._save(data, action.mailbox, action.flags,
                                                       action.create or self.autocreate))
                self.log.info(f"sieve: msgid={self.msgid}: fileinto action: stored mail into "
                              f"mailbox '{outcome.stored[-1][0]}'")
            elif action.kind == "redirect":
                if not await self._redirect(data, envelope, action.address, tracker):
                    keep = True  # Pigeonhole keeps a message whose forward was a duplicate (observed)
            elif action.kind in ("reject", "ereject"):
                try:
                    outcome.rejected = await self._reject(data, envelope, action.reason)
                except SendError as exc:
                    # Pigeonhole keeps the message when the rejection cannot go out.
                    self.log.error(f"msgid={self.msgid}: Temporarily failed to send rejection: {exc}")
                    keep, failed = True, True
            elif action.kind == "vacation" and action.vacation is not None:
                await self._vacation(message, envelope, action.vacation, tracker)
            elif action.kind == "notify" and action.notify is not None:
                await self._notify(message, envelope, action.notify)
        if not keep and not any(a.kind in ("store", "redirect", "reject", "ereject") for a in actions):
            self.log.info(f"sieve: msgid={self.msgid}: discard action: Marked message to be "
                          "discarded if not explicitly delivered (discard action)")
        if keep and not any(name == self.default_mailbox for name, _ in outcome.stored):
            outcome.stored.append(await self._keep(data, keep_flags))
        if failed and self._reporting is not None:
            self._log_failure(self._reporting)
        return outcome

    # --- stores ---------------------------------------------------------------

    async def _exists(self, name: str) -> bool:
        try:
            await self.store.open_mailbox(name)
        except NoSuchMailbox:
            return False
        return True

    async def _keep(self, data: bytes, flags: tuple[str, ...]) -> tuple[str, int]:
        stored = await self._save(data, self.default_mailbox, flags, self.autocreate)
        self.log.info(f"sieve: msgid={self.msgid}: stored mail into mailbox '{stored[0]}'")
        return stored

    async def _plain_keep(self, data: bytes) -> tuple[str, int]:
        """No script at all: delivery logs as without Sieve."""
        stored = await self._save(data, self.default_mailbox, (), self.autocreate)
        self.log.info(f"msgid={self.msgid}: saved mail to {stored[0]}")
        return stored

    async def _save(self, data: bytes, mailbox: str, flags: tuple[str, ...],
                    create: bool) -> tuple[str, int]:
        target = "INBOX" if mailbox.upper() == "INBOX" else mailbox
        created = False
        if target != "INBOX" and not await self._exists(target):
            if not create:
                target = "INBOX"  # the default mailbox vanished: INBOX, as Dovecot's LDA
            else:
                created = True
        try:
            uid = await self.store.deliver(data, target, flags, create=created)
            if created and self.autosubscribe:
                await self.store.subscribe(target)
        except StorageFull as exc:
            self.log.info(f"sieve: msgid={self.msgid}: failed to store into mailbox '{target}': "
                          f"{exc or 'Quota exceeded'}")
            raise disk_full_failure() from exc
        except (MailboxError, OSError) as exc:
            self.log.error(f"sieve: msgid={self.msgid}: failed to store into mailbox '{target}': {exc}")
            raise DeliveryFailed("Internal error occurred. Refer to server log for more information.",
                              temporary=True) from exc
        return target, uid

    # --- mails out ----------------------------------------------------------------

    async def _send(self, mail: OutgoingMail) -> None:
        """Hand over; a failure is logged as Dovecot's program client logs
        it (the program's stderr, then its exit code) and re-raised."""
        try:
            await send_mail(mail, sendmail_path=self.config.sendmail_path,
                            submission_host=self.config.submission_host, helo_name=self.config.host())
        except SendError as exc:
            for line in exc.stderr:
                get_log(self.service).error(line)
            if exc.exit_code is not None:
                self.log.info(f"program exec:{self.config.sendmail_path} ({exc.pid}): "
                              f"Terminated with non-zero exit code {exc.exit_code}")
            raise

    async def _redirect(self, data: bytes, envelope: Envelope, address: str,
                        tracker: DuplicateTracker | None) -> bool:
        """Forward; False when this message already went to `address`
        (Pigeonhole's record in the duplicate database, 12 hours)."""
        ident = f"{self.msgid}-{envelope.rcpt_to}-{address}--".encode("utf-8", "surrogateescape")
        if self.msgid == "unspecified":
            tracker = None  # no Message-ID: nothing to recognise it by
        if tracker is not None and await asyncio.to_thread(tracker.seen, ident):
            self.log.info(f"sieve: msgid={self.msgid}: redirect action: discarded duplicate forward "
                          f"to <{address}>")
            return False
        try:
            sender = self.config.redirect_sender(envelope.mail_from, envelope.rcpt_to, self.user.username)
            await self._send(redirect_mail(data, sender, address, envelope.rcpt_to))
        except SendError as exc:
            # Observed: any sendmail failure aborts the whole delivery with a
            # temporary failure, so the MTA tries again later.
            await self._action_error(f"msgid={self.msgid}: redirect action: failed to redirect message "
                                     f"to <{address}>: {exc} (temporary failure)")
            assert self._reporting is not None
            self.log.error(f"sieve: Execution of script {self._reporting.path} was aborted due to "
                           f"temporary failure ({self._where(self._reporting)})")
            raise DeliveryFailed("Execution of Sieve filters was aborted due to temporary failure",
                                 temporary=True) from exc
        self.log.info(f"sieve: msgid={self.msgid}: redirect action: forwarded to <{address}>")
        if tracker is not None:
            await asyncio.to_thread(tracker.mark, ident, self.config.redirect_duplicate_period)
        return True

    async def _reject(self, data: bytes, envelope: Envelope, reason: str) -> str | None:
        sender = envelope.mail_from
        if self.reject_inline:
            self.log.info(f"sieve: msgid={self.msgid}: reject action: rejected message from "
                          f"<{sender}> (reject)")
            return reason
        if not sender:
            self.log.info(f"sieve: msgid={self.msgid}: reject action: not sending reject message to <>")
            return None
        await self._send(reject_mail(
            data, sender=sender, recipient=envelope.rcpt_to, reason=reason,
            postmaster=self.config.postmaster(envelope.rcpt_to), hostname=self.config.host()))
        self.log.info(f"sieve: msgid={self.msgid}: reject action: rejected message from "
                      f"<{sender}> (reject)")
        return None

    async def _notify(self, message: SieveMessage, envelope: Envelope, notify: Notify) -> None:
        mail = notify_mail(notify, message, owner=envelope.rcpt_to,
                           postmaster=self.config.postmaster(envelope.rcpt_to), hostname=self.config.host())
        to = ", ".join(f"<{a}>" for a in mail.recipients)
        try:
            await self._send(mail)
        except SendError as exc:
            await self._action_error(f"msgid={self.msgid}: notify action: failed to send mail "
                                     f"notification to {to}: {exc} (temporary failure)")
            return
        self.log.info(f"sieve: msgid={self.msgid}: notify action: sent mail notification to {to}")

    def _period(self, vac: Vacation) -> int:
        if vac.seconds is None and vac.days is None:
            period = self.config.vacation_default_period
        else:
            period = vac.period
        period = max(period, self.config.vacation_min_period)
        if self.config.vacation_max_period:
            period = min(period, self.config.vacation_max_period)
        return period

    async def _vacation(self, message: SieveMessage, envelope: Envelope, vac: Vacation,
                        tracker: DuplicateTracker | None) -> None:
        sender = envelope.mail_from
        prefix = f"sieve: msgid={self.msgid}: vacation action: "
        key = vacation_id(sender, vac.handle or vacation_handle(vac.reason, vac.subject, vac.from_, vac.mime))
        skip = vacation_skip_reason(message, sender, envelope.rcpt_to, vac.addresses,
                              tracker is not None and await asyncio.to_thread(tracker.seen, key),
                              self.config.recipient_delimiter, self.config.vacation_dont_check_recipient)
        if skip:
            self.log.info(prefix + skip)
            return
        reply = vacation_mail(message, sender=sender, recipient=envelope.rcpt_to, reason=vac.reason,
                              subject=vac.subject, from_=vac.from_, mime=vac.mime, hostname=self.config.host())
        if self.config.vacation_send_from_recipient:
            # Pigeonhole's option for MTAs that refuse the null sender.
            reply = dataclasses.replace(reply, sender=envelope.rcpt_to)
        try:
            await self._send(reply)
        except SendError as exc:
            # Observed wording, without <> around the address but around the error.
            await self._action_error(f"msgid={self.msgid}: vacation action: failed to send vacation "
                                     f"response to {sender}: <{exc}> (temporary error)")
            return
        self.log.info(f"{prefix}sent vacation response to <{sender}>")
        if tracker is not None:
            await asyncio.to_thread(tracker.mark, key, self._period(vac))


def _report_lines(exc: SieveError) -> list[str]:
    """Pigeonhole's compile report: the errors, then `error: parse failed.`
    or `error: validation failed.`"""
    kind = "parse" if any("expected" in m or "unterminated" in m for m in exc.messages) \
        else "validation"
    return [*exc.messages, f"error: {kind} failed."]
