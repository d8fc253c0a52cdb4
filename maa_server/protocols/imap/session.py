"""The IMAP session: state machine, command loop and Dovecot's log lines.

`handle_connection(conn, ctx)` runs one client from greeting to BYE. The
command parser is sans-IO (parser.py); this module does the I/O around it
(`+ OK` for synchronising literals, line limits, timeouts), dispatches to the
command modules through `commands.COMMANDS`, and reports mailbox changes made
by others at the points RFC 3501 section 5.5 / 7.4.1 allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
import traceback
from typing import Any

from maa_server.auth.interface import ClientInfo, UserInfo
from maa_server.logs import get_log, login_fields, mail_process_prefix
from maa_server.protocols.connection import Connection, ConnectionClosed, LineTooLong
from maa_server.protocols.context import LiveSession, ServerContext, new_session_id
from maa_server.protocols.imap import capabilities
from maa_server.protocols.imap.errors import (
    ImapBadCharset,
    ImapBye,
    ImapCommandFailed,
    ImapError,
    ImapParseError,
)
from maa_server.protocols.imap.names import NameMapper
from maa_server.protocols.imap.parser import (
    Command,
    CommandParser,
    CommandSyntaxError,
    NeedLiteral,
)
from maa_server.protocols.imap.selected import SelectedMailbox
from maa_server.storage.interface import MailboxError, MailStore

NOT_AUTHENTICATED = "not-authenticated"
AUTHENTICATED = "authenticated"
SELECTED = "selected"
LOGOUT = "logout"

PRE_AUTH_TIMEOUT = 180.0  # imap-login: CLIENT_LOGIN_IDLE_TIMEOUT_MSECS (3 minutes)
AUTOLOGOUT = 30 * 60.0  # RFC 3501 5.4: at least 30 minutes
DEFAULT_MAX_LINE = 65536
BAD_COMMAND = "Error in IMAP command received by server."
MAX_BAD_COMMANDS = 20  # imap-common.h CLIENT_MAX_BAD_COMMANDS (after login)


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = settings.get(name, default)
    return default if value is None else value


def dovecot_session_id(ip: str, port: int) -> str:
    """Dovecot's session id (spec 6.2; login-common/client-common.c): base64
    of the low 48 bits of the microsecond clock, the client port (both
    little-endian) and the client IP, so log lines look the same."""
    import base64
    import ipaddress

    try:
        packed = ipaddress.ip_address(ip).packed
    except ValueError:
        return new_session_id()
    usecs = time.time_ns() // 1000
    raw = (usecs & 0xFFFFFFFFFFFF).to_bytes(6, "little") + (port & 0xFFFF).to_bytes(2, "little")
    return base64.b64encode(raw + packed).decode("ascii").rstrip("=")


def _in_networks(ip: str, networks: str) -> bool:
    import ipaddress

    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for net in networks.replace(",", " ").split():
        try:
            if addr in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


class Stats:
    """The counters of imap_logout_format."""

    __slots__ = (
        "body_bytes",
        "body_count",
        "deleted",
        "expunged",
        "hdr_bytes",
        "hdr_count",
        "trashed",
    )

    def __init__(self) -> None:
        self.deleted = self.expunged = self.trashed = 0
        self.hdr_count = self.hdr_bytes = self.body_count = self.body_bytes = 0


class ImapSession:
    def __init__(self, conn: Connection, ctx: ServerContext) -> None:
        self.conn = conn
        self.ctx = ctx
        self.session_id = dovecot_session_id(conn.remote_ip, conn.remote_port)
        self.state = NOT_AUTHENTICATED
        self.settings = self.load_settings()
        self.max_line = int(_setting(self.settings, "imap_max_line_length", DEFAULT_MAX_LINE))
        self.parser = CommandParser(max_literal=self.max_line,
                                    literal_minus=bool(self.setting("imap_literal_minus", False)))
        self.login_log = get_log("imap-login")
        self.log = self.login_log
        self.connected_at = time.monotonic()
        # Pre-login bookkeeping for Dovecot's disconnect reasons.
        self.auth_attempts = 0
        self.auth_successes = 0
        self.first_attempt_at: float | None = None
        self.last_user = ""
        self.last_method = ""
        self.plaintext_refused = False
        self.client_sent_capability = False  # then login OK carries no [CAPABILITY]
        # BADs in a row: imap-login gives up after 3, the imap process after 20.
        self.bad_commands = 0
        self.sasl_started: float | None = None  # an AUTHENTICATE waiting for the client
        self.starttls_done = False
        # Post-login state.
        self.user: UserInfo | None = None
        self.username = ""
        self.store: MailStore | None = None
        self.names = NameMapper("", "/")
        self.selected: SelectedMailbox | None = None
        self.enabled: set[str] = set()
        self.stats = Stats()
        self.bytes_at_login = (0, 0)
        self.last_command = ""
        self.last_command_done = 0.0
        self.commands_after_login = 0
        self.live: LiveSession | None = None
        self.kicked = False
        self._command_started = 0.0
        # Privilege separation: the session went on in the user's worker.
        self.handed_over = False

    # -- configuration ------------------------------------------------------

    def load_settings(self) -> Any:
        return self.ctx.config.settings(protocol="imap", local_ip=self.conn.local_ip,
                                        remote_ip=self.conn.remote_ip,
                                        local_name=self.conn.sni_name or None)

    def setting(self, name: str, default: Any) -> Any:
        return _setting(self.settings, name, default)

    def client_info(self) -> ClientInfo:
        return ClientInfo(protocol="imap", remote_ip=self.conn.remote_ip,
                          remote_port=self.conn.remote_port, local_ip=self.conn.local_ip,
                          local_port=self.conn.local_port, secured=self.secured,
                          session_id=self.session_id,
                          local_name=self.conn.sni_name)

    @property
    def tls(self) -> bool:
        return self.conn.secured

    @property
    def secured(self) -> bool:
        """TLS, a same-IP connection or login_trusted_networks, as Dovecot's
        login-common decides `secured` (spec 6.2 `%c`, 7.1)."""
        if self.conn.secured:
            return True
        rip, lip = self.conn.remote_ip, self.conn.local_ip
        if not rip or rip == lip:
            return True  # same IP, or a UNIX socket
        trusted = str(self.setting("login_trusted_networks", "") or "")
        return bool(trusted) and _in_networks(rip, trusted)

    @property
    def condstore(self) -> bool:
        return "CONDSTORE" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    def starttls_available(self) -> bool:
        ssl_mode = str(self.setting("ssl", "yes"))
        has_ctx = self.conn.server_ssl is not None or self.ctx.ssl_context is not None
        return ssl_mode != "no" and has_ctx and not self.conn.secured

    def capability_string(self) -> str:
        if self.state == NOT_AUTHENTICATED:
            client = self.client_info()
            tls_missing = self.tls_required_missing()
            return capabilities.pre_login(
                self.settings, starttls=self.starttls_available(),
                login_disabled=tls_missing or not self.ctx.auth.plaintext_allowed(client),
                # ssl = required without TLS: no mechanism at all (spec 7.1).
                mechanisms=[] if tls_missing else self.ctx.auth.mechanisms(client))
        return capabilities.post_login(self.settings, special_use=self._has_special_use(),
                                       compress=self._compress_enabled())

    def tls_required_missing(self) -> bool:
        """ssl = required and this connection is neither TLS nor secured."""
        return str(self.setting("ssl", "yes")) == "required" and not self.secured

    def _has_special_use(self) -> bool:
        return any(child.get("special_use", "") for ns in self.ctx.config.namespaces
                   for child in ns.children)

    def _compress_enabled(self) -> bool:
        """Dovecot offers COMPRESS=DEFLATE only with the imap_zlib plugin."""
        plugins = str(self.setting("mail_plugins", ""))
        return "imap_zlib" in plugins.split()

    # -- output -------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.conn.write(data)

    def untagged(self, text: str) -> None:
        self.conn.write(b"* " + text.encode("utf-8", "surrogateescape") + b"\r\n")

    def timing(self) -> str:
        """Dovecot 2.3 appends `(x.xxx + 0.000 secs)` to post-login OKs."""
        elapsed = time.monotonic() - self._command_started
        return f" ({elapsed:.3f} + 0.000 secs)."

    def tagged(self, tag: str, kind: str, text: str) -> None:
        if self.state != NOT_AUTHENTICATED and kind in ("OK", "NO", "BAD") and \
                not text.endswith("secs)."):
            text = text.removesuffix(".")
            text += self.timing()
        self.conn.write(f"{tag} {kind} {text}\r\n".encode("utf-8", "surrogateescape"))
        if self.state == NOT_AUTHENTICATED:
            return
        if kind != "BAD":
            self.bad_commands = 0
            return
        self.bad_commands += 1
        if self.bad_commands >= MAX_BAD_COMMANDS:
            # Dovecot's imap process gives up on a client that keeps erring.
            self.write(b"* BYE Too many invalid IMAP commands.\r\n")
            raise ImapBye("Too many invalid IMAP commands.")

    # -- main loop ------------------------------------------------------------

    async def run(self, resume: tuple[str, UserInfo, str] | None = None) -> None:
        """Greeting to BYE; or, with `resume` (tag, user, username), from the
        login answer on, in a worker that got the connection handed over."""
        reason = "Connection closed"
        try:
            if resume is None:
                greeting = str(self.setting("login_greeting", "Dovecot ready."))
                self.write(f"* OK [CAPABILITY {self.capability_string()}] {greeting}\r\n".encode())
            else:
                from maa_server.protocols.imap.auth import complete_login

                await complete_login(self, *resume)
            await self.conn.drain()
            while self.state != LOGOUT:
                cmd = await self._read_command()
                if cmd is None:
                    continue
                await self._dispatch(cmd)
                await self.conn.drain()
            reason = "Logged out" if self.user else "Aborted login by logging out"
        except ImapBye as bye:
            reason = bye.text
        except TimeoutError:
            reason = "Inactivity"
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                self.write(b"* BYE Disconnected for inactivity.\r\n")
                await asyncio.wait_for(self.conn.drain(), 5)
        except ConnectionClosed:
            reason = self.conn.disconnect_reason or "Connection closed"
        finally:
            if not self.handed_over:
                self._log_disconnect(reason)
            if self.live is not None:
                self.ctx.sessions.remove(self.live)
            await self.conn.close()

    async def _read_line(self, timeout: float) -> bytes:
        return await asyncio.wait_for(self.conn.readline(self.max_line), timeout)

    def idle_timeout(self) -> float:
        return AUTOLOGOUT if self.user else PRE_AUTH_TIMEOUT

    async def _read_command(self) -> Command | None:
        """One whole command, literals included; None after a BAD reply."""
        timeout = self.idle_timeout()
        try:
            line = await self._read_line(timeout)
            while True:
                result = self.parser.feed_line(line)
                if isinstance(result, Command):
                    return result
                assert isinstance(result, NeedLiteral)
                if result.synchronizing:
                    await self.conn.send(b"+ OK\r\n")
                data = await asyncio.wait_for(self.conn.read_exactly(result.size), timeout)
                self.parser.feed_literal(data)
                line = await self._read_line(timeout)
        except LineTooLong as exc:
            self.parser.reset()
            tag = exc.head.split(b" ", 1)[0].decode("ascii", "replace") if b" " in exc.head else ""
            text = "Error in IMAP command received by server: Too long argument."
            self.write((f"{tag} BAD " if tag else "* BAD ").encode() + text.encode() + b"\r\n")
            await self.conn.drain()
            return None
        except CommandSyntaxError as exc:
            if exc.skip_literal:
                # A refused {n+} literal is on its way, and after it the rest
                # of that command line: swallow both to stay in step.
                await self.conn.discard(exc.skip_literal)
                with contextlib.suppress(LineTooLong):
                    await self.conn.readline(self.max_line)
            if exc.kind == "NO":
                code = f"[{exc.code}] " if exc.code else ""
                self.tagged(exc.tag or "*", "NO", code + exc.text)
            elif self.state == NOT_AUTHENTICATED:
                # imap-login sends the parser's own words, bare (observed:
                # `a1 BAD 8bit data in atom`, `a3 BAD Unexpected ')'`).
                # (Literal size errors keep the generic text.)
                specific = exc.tag and "literal" not in exc.text.lower()
                detail = exc.text if specific else BAD_COMMAND
                self.pre_login_bad(exc.tag or "*", detail)
            elif exc.tag:
                from maa_server.protocols.imap.commands import syntax_error_text
                self.tagged(exc.tag, "BAD", syntax_error_text(exc.name, exc.text))
            else:
                self.write(f"* BAD {BAD_COMMAND}\r\n".encode())
            await self.conn.drain()
            return None

    async def _dispatch(self, cmd: Command) -> None:
        from maa_server.protocols.imap.commands import COMMANDS

        self._command_started = time.monotonic()
        name, args, uid = cmd.name, cmd.args, False
        if name == "UID":
            from maa_server.protocols.imap.tokens import Atom
            if not args or not isinstance(args[0], Atom):
                self.tagged(cmd.tag, "BAD", "Error in IMAP command: Invalid command name")
                return
            name, args, uid = "UID " + args[0].upper(), args[1:], True
        spec = COMMANDS.get(name)
        if spec is None or self.state not in spec.states:
            if spec is not None and self.state == AUTHENTICATED and SELECTED in spec.states:
                self.tagged(cmd.tag, "BAD", "No mailbox selected.")
            elif self.state == NOT_AUTHENTICATED:
                # imap-login knows only the pre-login commands.
                self.pre_login_bad(cmd.tag)
            else:
                # The imap process has no LOGIN/AUTHENTICATE/STARTTLS either.
                self.tagged(cmd.tag, "BAD", f"Error in IMAP command {name}: Unknown command.")
            return
        if self.user:
            self.commands_after_login += 1
        if self.state == NOT_AUTHENTICATED:
            self.bad_commands = 0
        try:
            text = await spec.handler(self, cmd.tag, args, uid)
            if text is not None and spec.sync:
                await self.report_changes(allow_expunge=spec.allow_expunge)
                if self.selected is not None:  # RFC 7162 3.2.10
                    extra, text = self.selected.qresync_tagline(text, self.qresync)
                    self.write(extra)
            if text is not None:
                self.tagged(cmd.tag, "OK", text)
        except ImapBadCharset as exc:
            self.tagged(cmd.tag, "NO", f"[{exc.code}] {exc.text}")
        except ImapParseError as exc:
            self.tagged(cmd.tag, "BAD", f"Error in IMAP command {name}: {exc.text}")
        except ImapCommandFailed as exc:
            if spec.sync:
                await self.report_changes(allow_expunge=spec.allow_expunge)
            self.tagged(cmd.tag, "NO", (f"[{exc.code}] " if exc.code else "") + exc.text)
        except MailboxError as exc:
            code = f"[{exc.code}] " if exc.code else ""
            self.tagged(cmd.tag, "NO", code + (str(exc) or "Internal error"))
        except (TimeoutError, ImapBye, ConnectionClosed):
            raise
        except ImapError as exc:
            self.tagged(cmd.tag, "NO", exc.text)
        except Exception as exc:  # noqa: BLE001 -- a bug or I/O failure: say so, keep serving
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self.log.error(f"{name} failed: {exc!r} at {where.filename}:{where.lineno}")
            self.tagged(cmd.tag, "NO", "[SERVERBUG] Internal error occurred. "
                        "Refer to server log for more information.")
        finally:
            self.last_command = name
            self.last_command_done = time.monotonic()

    def pre_login_bad(self, tag: str, text: str = BAD_COMMAND) -> None:
        """imap-login answers BAD, and after the third bad command in a row
        `* BYE Too many invalid IMAP commands.` (imap-login-client.c)."""
        self.bad_commands += 1
        if self.bad_commands >= 3:
            self.write(b"* BYE Too many invalid IMAP commands.\r\n")
            raise ImapBye("Too many invalid commands")
        self.write(f"{tag} BAD {text}\r\n".encode("utf-8", "surrogateescape"))

    async def report_changes(self, *, allow_expunge: bool, full_sync: bool = False) -> None:
        """Send what other sessions and deliveries changed (RFC 3501 5.5)."""
        sel = self.selected
        if sel is None:
            return
        if full_sync:
            await sel.mailbox.sync()
        for line in sel.refresh(allow_expunge=allow_expunge, condstore=self.condstore,
                                qresync=self.qresync):
            self.write(line)

    # -- login completion -----------------------------------------------------

    async def begin_mail_session(self, user: UserInfo, username: str) -> None:
        """After a successful authentication: open the store, register.

        From here on log lines carry the mail-process prefix, also when the
        store cannot be opened (Dovecot logs that as the mail process's
        `Error:` followed by its `Disconnected:` line)."""
        self.user = user
        self.username = username
        self.log = get_log(mail_process_prefix("imap", username, self.session_id))
        self.bytes_at_login = (self.conn.bytes_in, self.conn.bytes_out)
        self.store = await self.ctx.open_store(user)
        workarounds = str(self.setting("imap_client_workarounds", "")).split()
        self.names = NameMapper(self._namespace_prefix(), self.store.separator,
                                "tb-extra-mailbox-sep" in workarounds)
        self.state = AUTHENTICATED
        self.live = LiveSession(user=username, protocol="imap", remote_ip=self.conn.remote_ip,
                                session_id=self.session_id, kick=self.kick)
        self.ctx.sessions.add(self.live)

    def handover_state(self, tag: str, user: UserInfo, username: str) -> dict[str, Any]:
        """What resume_connection needs to go on in another process."""
        return {"tag": tag, "user": dataclasses.asdict(user), "username": username,
                "session_id": self.session_id, "last_user": self.last_user,
                "last_method": self.last_method, "auth_attempts": self.auth_attempts,
                "auth_successes": self.auth_successes,
                "client_sent_capability": self.client_sent_capability}

    def _namespace_prefix(self) -> str:
        namespaces = self.ctx.config.namespaces
        for ns in namespaces:
            if ns.get("inbox", "no") == "yes" or len(namespaces) == 1:
                return str(ns.get("prefix", ""))
        return ""

    def kick(self) -> None:
        """maa-adm kick and the daemon's SIGTERM: Dovecot's doveadm kick
        SIGTERMs the imap process, which says this (imap-client.c
        clients_destroy_all; observed from 2.3.19), then close."""
        self.kicked = True
        with contextlib.suppress(OSError, RuntimeError):
            if not self.conn.closing:
                self.conn.write(b"* BYE Server shutting down.\r\n")
        self.conn.close_soon()

    def login_fields(self) -> str:
        """login_log_format_elements, with `%c` = TLS / secured / nothing."""
        text = login_fields(self.last_user, self.last_method, self.conn.remote_ip,
                            self.conn.local_ip, self.tls, self.session_id,
                            os.getpid() if self.user else None)
        if not self.tls and self.secured:
            text = text.replace(", session=<", ", secured, session=<")
        return text

    def _log_disconnect(self, reason: str) -> None:
        if self.kicked:
            reason = "Server shutting down."
        if self.user:
            if reason == "Connection closed":
                if self.commands_after_login == 0:
                    reason = "Connection closed (No commands sent)"
                else:
                    ago = time.monotonic() - self.last_command_done
                    reason = f"Connection closed ({self.last_command} finished {ago:.3f} secs ago)"
            elif reason == "Inactivity":
                reason = f"Inactivity - no input for {int(AUTOLOGOUT)} secs"
            self.log.info(f"Disconnected: {reason} {self.logout_stats()}")
            return
        if reason.startswith("Maximum number of connections from user+IP"):
            # Dovecot logs this refusal without a parenthesised detail.
            self.login_log.info(f"Disconnected: {reason}: {self.login_fields()}")
            return
        if reason == "Inactivity":
            reason = "Inactivity during authentication" if self.auth_attempts else "Inactivity"
        if self.sasl_started is not None:
            waited = int(time.monotonic() - self.sasl_started)
            detail = f"client didn't finish SASL auth, waited {waited} secs"
        elif self.plaintext_refused and self.auth_attempts == 0:
            detail = "tried to use disallowed plaintext auth"
        elif self.auth_attempts == 0:
            detail = f"no auth attempts in {int(time.monotonic() - self.connected_at)} secs"
        elif self.auth_successes:
            detail = f"internal failure, {self.auth_successes} successful auths"
        else:
            since = int(time.monotonic() - (self.first_attempt_at or self.connected_at))
            detail = f"auth failed, {self.auth_attempts} attempts in {since} secs"
        self.login_log.info(f"Disconnected: {reason} ({detail}): {self.login_fields()}")

    def logout_stats(self) -> str:
        s = self.stats
        bin_ = self.conn.bytes_in - self.bytes_at_login[0]
        bout = self.conn.bytes_out - self.bytes_at_login[1]
        return (f"in={bin_} out={bout} deleted={s.deleted} expunged={s.expunged} "
                f"trashed={s.trashed} hdr_count={s.hdr_count} hdr_bytes={s.hdr_bytes} "
                f"body_count={s.body_count} body_bytes={s.body_bytes}")


async def resume_connection(conn: Connection, ctx: ServerContext, state: dict[str, Any]) -> None:
    """Privilege separation: serve a client whose login was done by another
    process (ServerContext.hand_over), starting with the login's answer."""
    session = ImapSession(conn, ctx)
    session.session_id = str(state["session_id"])
    session.last_user = str(state.get("last_user", ""))
    session.last_method = str(state.get("last_method", ""))
    session.auth_attempts = int(state.get("auth_attempts", 1))
    session.auth_successes = int(state.get("auth_successes", 1))
    session.client_sent_capability = bool(state.get("client_sent_capability"))
    user = UserInfo(**state["user"])
    await session.run(resume=(str(state["tag"]), user, str(state["username"])))


async def handle_connection(conn: Connection, ctx: ServerContext) -> None:
    """Serve one IMAP client (plain or implicit TLS) until it leaves."""
    if conn.server_ssl is None and ctx.ssl_context is not None:
        conn.server_ssl = ctx.ssl_context
    await ImapSession(conn, ctx).run()
