"""A ManageSieve connection (RFC 5804), answering as Pigeonhole's
managesieve-login and managesieve processes do: `handle_connection(conn, ctx)`.

Texts and codes were taken from the real Pigeonhole 0.5 (Debian 12)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import ipaddress
import os
import time
from typing import Any

from maa_server.auth.interface import AuthResult, AuthStatus, ClientInfo, UserInfo
from maa_server.auth.mail_access import mail_access_refusal
from maa_server.logs import get_log, login_fields, mail_process_prefix
from maa_server.protocols.connection import Connection, ConnectionClosed, LineTooLong
from maa_server.protocols.context import LiveSession, ServerContext, new_session_id
from maa_server.protocols.managesieve.parser import (
    Command,
    CommandReader,
    LiteralTooLarge,
    ParseError,
    quote,
    response,
)
from maa_server.sieve.scripts import Quota, ScriptError, ScriptStore, parse_location
from maa_server.sieve.settings import SieveConfig

LINE_LIMIT = 8192
LOGIN_TIMEOUT = 180.0
IDLE_TIMEOUT = 1800.0
MAX_BAD_COMMANDS = 3  # managesieve-login's CLIENT_MAX_BAD_COMMANDS
# Implicit in every implementation (RFC 5228 2.7.3): not listed in SIEVE.
_UNLISTED = {"comparator-i;octet", "comparator-i;ascii-casemap"}
IMPLEMENTATION = "Dovecot (Debian) Pigeonhole"
login_log = get_log("managesieve-login")


class _Logout(Exception):
    """Ends the session; `reason` is the Disconnected: line's text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _size(value: str, default: int) -> int:
    from maa_server.config.values import parse_size

    try:
        return parse_size(value) if value else default
    except ValueError:
        return default


class ManageSieveSession:
    def __init__(self, conn: Connection, ctx: ServerContext) -> None:
        self.conn = conn
        self.ctx = ctx
        self.session_id = new_session_id()
        self.user = ""
        self.scripts: ScriptStore | None = None
        self.failed_attempts = 0
        self.bad_commands = 0
        self.log = login_log
        self.started = time.monotonic()
        self.handed_over = False  # privilege separation: the session went on in a worker
        self.auth_attempts = 0
        self.last_user = ""  # for the login process's Disconnected line
        self.last_mech = ""
        self.max_redirects = 4

    # --- plumbing ---------------------------------------------------------

    def client_info(self) -> ClientInfo:
        return ClientInfo(protocol="sieve", remote_ip=self.conn.remote_ip,
                          remote_port=self.conn.remote_port, local_ip=self.conn.local_ip,
                          local_port=self.conn.local_port, secured=self.secured,
                          session_id=self.session_id)

    @property
    def secured(self) -> bool:
        """TLS, a same-IP connection or login_trusted_networks, as Dovecot's
        login-common decides `secured` (the `%c` of the login line)."""
        if self.conn.secured:
            return True
        rip, lip = self.conn.remote_ip, self.conn.local_ip
        if not rip or rip == lip:
            return True
        trusted = str(self.setting("login_trusted_networks", "") or "")
        try:
            ip = ipaddress.ip_address(rip)
            return any(ip in ipaddress.ip_network(n, strict=False) for n in trusted.split())
        except ValueError:
            return False

    def login_fields(self, user: str, mech: str, mpid: int | None = None) -> str:
        text = login_fields(user, mech, self.conn.remote_ip, self.conn.local_ip,
                            self.conn.secured, self.session_id, mpid)
        if not self.conn.secured and self.secured:
            text = text.replace(", session=<", ", secured, session=<")
        return text

    def setting(self, name: str, default: object) -> object:
        try:
            value = self.ctx.config.get(name, protocol="sieve", local_ip=self.conn.local_ip or None,
                                        remote_ip=self.conn.remote_ip or None)
        except Exception:  # noqa: BLE001 - unknown to the config: Pigeonhole's default
            return default
        return default if value in (None, "") else value

    def extensions(self) -> frozenset[str]:
        """What `sieve_extensions` enables: what scripts may require."""
        try:
            plugin = dict(self.ctx.config.plugin("sieve"))
        except Exception:  # noqa: BLE001 - no plugin section
            plugin = {}
        return SieveConfig.from_plugin(plugin, lambda name: "").extensions

    def capabilities(self) -> bytes:
        # Pigeonhole's order (managesieve-capabilities.c): IMPLEMENTATION,
        # SIEVE, MAXREDIRECTS (logged in), NOTIFY, SASL, STARTTLS, VERSION.
        exts = self.extensions()
        lines: list[tuple[bytes, str | None]] = [
            (b"IMPLEMENTATION", IMPLEMENTATION),
            (b"SIEVE", " ".join(sorted(exts - _UNLISTED, key=_PIGEONHOLE_ORDER)))]
        if self.user:
            lines.append((b"MAXREDIRECTS", str(self.max_redirects)))
        if "enotify" in exts:
            lines.append((b"NOTIFY", "mailto"))
        if not self.user:
            mechs = self.ctx.auth.mechanisms(self.client_info())
            lines.append((b"SASL", " ".join(mechs)))
            if self.conn.server_ssl is not None and not self.conn.secured:
                lines.append((b"STARTTLS", None))
        lines.append((b"VERSION", "1.0"))
        return b"".join(b'"' + k + b'"' + (b" " + quote(v) if v is not None else b"") + b"\r\n"
                        for k, v in lines)

    def max_script_size(self) -> int:
        return _size(self._plugin("sieve_max_script_size"), 1 << 20)

    async def read_command(self, timeout: float) -> Command:
        reader = CommandReader(max_literal=self.max_script_size())
        line = await asyncio.wait_for(self.conn.readline(LINE_LIMIT), timeout)
        while True:
            try:
                want = reader.feed_line(line)
            except LiteralTooLarge as exc:
                # Skip the literal and the rest of its command line, then refuse.
                await self.conn.discard(exc.size)
                await self.conn.readline(LINE_LIMIT)
                raise
            if not want:
                return reader.command()
            reader.feed_literal(await self.conn.read_exactly(want))
            line = await self.conn.readline(LINE_LIMIT)

    def _plugin(self, name: str) -> str:
        try:
            return str(self.ctx.config.plugin("sieve").get(name, ""))
        except Exception:  # noqa: BLE001 - no plugin section
            return ""

    # --- the loop ---------------------------------------------------------

    async def run(self, resume: tuple[AuthResult, str] | None = None) -> None:
        """Greeting to logout; with `resume` (result, mechanism), from the
        login's answer on, in the worker a login was handed to."""
        greeting = str(self.setting("login_greeting", "Dovecot ready."))
        reason = "Connection closed"
        try:
            if resume is None:
                await self.conn.send(self.capabilities() + response("OK", greeting))
            else:
                await self.finish_login(*resume)
            while True:
                try:
                    cmd = await self.read_command(IDLE_TIMEOUT if self.user else LOGIN_TIMEOUT)
                except LineTooLong:
                    await self.conn.send(response("NO", "Error in MANAGESIEVE command: Too long command."))
                    continue
                except LiteralTooLarge as exc:
                    if exc.command_line.split(b" ", 1)[0].upper() in (b"PUTSCRIPT", b"CHECKSCRIPT"):
                        await self.conn.send(response(
                            "NO", f"Script is too large (max {self.max_script_size()} bytes).",
                            "QUOTA/MAXSIZE"))
                    else:
                        await self.conn.send(response("NO", "Error in MANAGESIEVE command: "
                                                            "Literal too large"))
                    continue
                except ParseError as exc:
                    await self.conn.send(response("NO", f"Error in MANAGESIEVE command: {exc}"))
                    continue
                try:
                    await self.dispatch(cmd)
                except ScriptError as exc:
                    await self.conn.send(response("NO", str(exc), exc.code))
        except _Logout as exc:
            reason = exc.reason
        except TimeoutError:
            await self._bye('BYE "Disconnected for inactivity."\r\n')
            reason = "Inactivity"
        except ConnectionClosed:
            reason = "Connection closed"
        finally:
            if not self.handed_over and reason:
                self._log_disconnect(reason)
            await self.conn.close()

    def _log_disconnect(self, reason: str) -> None:
        """The last line of a session, as managesieve(-login) writes it."""
        if self.user:
            counts = f"bytes={self.conn.bytes_in}/{self.conn.bytes_out}"
            text = {"Logged out": f"Disconnected: Logged out {counts}",
                    "Connection closed": f"Connection closed {counts}"}.get(
                reason, f"Disconnected for inactivity {counts}")
            self.log.info(text)
            return
        secs = int(time.monotonic() - self.started)
        detail = (f"auth failed, {self.auth_attempts} attempts in {secs} secs" if self.auth_attempts
                  else f"no auth attempts in {secs} secs")
        login_log.info(f"Disconnected: {reason} ({detail}): "
                       f"{self.login_fields(self.last_user, self.last_mech)}")

    async def _bye(self, text: str) -> None:
        try:
            await asyncio.wait_for(self.conn.send(text.encode()), 5)
        except (TimeoutError, ConnectionClosed):
            pass

    async def dispatch(self, cmd: Command) -> None:
        handler = _ANY_STATE.get(cmd.name) or (_AUTHED if self.user else _NOT_AUTHED).get(cmd.name)
        if handler is None:
            if not self.user and cmd.name in _AUTHED:
                # managesieve-login knows only its own commands (observed text).
                await self._bad_command(response("NO", "Error in MANAGESIEVE command received by server."))
            else:
                await self._bad_command(response(
                    "NO", f"Error in MANAGESIEVE command {cmd.name}: Unknown command."))
            return
        n_args = _ARGS.get(cmd.name, (0, 0))
        if not n_args[0] <= len(cmd.args) <= n_args[1]:
            if len(cmd.args) < n_args[0]:
                text = "Missing arguments."
            else:  # NOOP words it differently (cmd-noop.c vs managesieve-parser.c)
                text = "Too many arguments." if cmd.name == "NOOP" else "Too many command arguments."
            await self._bad_command(response("NO", f"Error in MANAGESIEVE command {cmd.name}: {text}"))
            return
        await handler(self, cmd)

    async def _bad_command(self, reply: bytes) -> None:
        """Before login, the third bad command ends the connection."""
        if self.user:
            await self.conn.send(reply)
            return
        self.bad_commands += 1
        if self.bad_commands >= MAX_BAD_COMMANDS:
            await self.conn.send(b'BYE "Too many invalid MANAGESIEVE commands."\r\n')
            raise _Logout("Too many invalid commands.")
        await self.conn.send(reply)

    # --- any state --------------------------------------------------------

    async def cmd_capability(self, cmd: Command) -> None:
        await self.conn.send(self.capabilities() + response("OK", "Capability completed."))

    async def cmd_noop(self, cmd: Command) -> None:
        if cmd.args:
            tag = _text(cmd.args[0])
            await self.conn.send(b"OK (TAG " + quote(tag) + b') "Done"\r\n')
        else:
            await self.conn.send(response("OK", "NOOP Completed"))

    async def cmd_logout(self, cmd: Command) -> None:
        await self.conn.send(response("OK", "Logout completed."))
        raise _Logout("Logged out" if self.user else "Aborted login by logging out")

    # --- not authenticated ------------------------------------------------

    async def cmd_starttls(self, cmd: Command) -> None:
        if self.conn.server_ssl is None or self.conn.secured:
            await self.conn.send(response("NO", "Error in MANAGESIEVE command STARTTLS: Unknown command."))
            return
        await self.conn.send(response("OK", "Begin TLS negotiation now."))
        await self.conn.start_tls()
        # RFC 5804 2.2: the server re-issues its capabilities after TLS.
        await self.conn.send(self.capabilities() + response("OK", "TLS negotiation successful."))

    async def cmd_authenticate(self, cmd: Command) -> None:
        mech = _text(cmd.args[0]).upper()
        self.auth_attempts += 1
        self.last_mech, self.last_user = mech, ""
        info = self.client_info()
        exchange = self.ctx.auth.start_sasl(mech, info)
        if exchange is None:
            if mech in ("PLAIN", "LOGIN") and not self.ctx.auth.plaintext_allowed(info):
                await self.conn.send(response("NO", "Plaintext authentication disallowed on "
                                                    "non-secure (SSL/TLS) connections."))
            else:
                await self.conn.send(response("NO", "Unsupported authentication mechanism."))
            return
        data: bytes | None = None
        if len(cmd.args) > 1:
            data = _b64(cmd.args[1])
            if data is None:
                await self.conn.send(response("NO", "Invalid base64 data in initial response"))
                return
        while True:
            step = await exchange.step(data)
            if step.result is not None:
                break
            await self.conn.send(quote(base64.b64encode(step.challenge or b"")) + b"\r\n")
            reply = await self.read_command_string()
            if reply is None:
                await self.conn.send(response("NO", "Invalid AUTHENTICATE client response."))
                return
            if reply == b"*":
                await self.conn.send(response("NO", "Authentication aborted by client."))
                return
            data = _b64(reply)
            if data is None:
                await self.conn.send(response("NO", "Invalid base64 data in continued response"))
                return
        await self.finish_login(step.result, mech)

    async def read_command_string(self) -> bytes | None:
        """A SASL response: one string (quoted or literal) alone on a line,
        None when it is anything else (RFC 5804 2.1: it must be a string).
        Read with the command reader, as the sole argument of a dummy name."""
        reader = CommandReader(max_literal=LINE_LIMIT)
        line = await asyncio.wait_for(self.conn.readline(LINE_LIMIT), LOGIN_TIMEOUT)
        try:
            want = reader.feed_line(b"SASL " + line)
            while want:
                reader.feed_literal(await self.conn.read_exactly(want))
                want = reader.feed_line(await self.conn.readline(LINE_LIMIT))
            args = reader.command().args
        except LiteralTooLarge as exc:
            await self.conn.discard(exc.size)
            await self.conn.readline(LINE_LIMIT)
            return None
        except ParseError:
            return None
        return args[0] if len(args) == 1 and isinstance(args[0], bytes) else None

    async def finish_login(self, result: AuthResult, mech: str) -> None:
        if result.status is not AuthStatus.OK or result.user is None:
            self.failed_attempts += 1
            self.last_user = result.username[:80]
            if result.status is AuthStatus.TEMPFAIL:
                await self.conn.send(response("NO", "Temporary authentication failure.", "TRYLATER"))
            else:
                await self.conn.send(response("NO", result.reason or "Authentication failed."))
            return
        if self.ctx.hand_over is not None:  # privilege separation: the user's worker goes on
            await self._hand_over(result, mech)
        user = result.user
        self.user = result.username or user.username
        self.log = get_log(mail_process_prefix("managesieve", self.user, self.session_id))
        refusal = mail_access_refusal(user, self.ctx.config)
        if refusal:  # mail-storage-service.c: the mail process refuses the user
            login_log.info(f"Login: {self.login_fields(self.user, mech, os.getpid())}")
            get_log(f"managesieve({self.user})").error(refusal)
            await self._bye('BYE "Internal error occurred. Refer to server log for more information."\r\n')
            raise _Logout("")  # no Disconnected: line: the error was the last one
        script_dir, active = parse_location(self._plugin("sieve"), user.home, self._plugin("sieve_dir"))
        self.scripts = ScriptStore(script_dir, active, Quota(
            max_scripts=int(self._plugin("sieve_quota_max_scripts") or 0),
            max_storage=_size(self._plugin("sieve_quota_max_storage"), 0),
            max_script_size=_size(self._plugin("sieve_max_script_size"), 1 << 20)),
            owner=(user.uid, user.gid if user.gid is not None else -1)
            if os.geteuid() == 0 and user.uid is not None else None)
        self.max_redirects = int(self._plugin("sieve_max_redirects") or 4)
        login_log.info(f"Login: {self.login_fields(self.user, mech, os.getpid())}")
        live = LiveSession(self.user, "sieve", self.conn.remote_ip, self.session_id, self.conn.abort)
        self.ctx.sessions.add(live)
        self._live = live
        await self.conn.send(response("OK", "Logged in."))

    async def _hand_over(self, result: AuthResult, mech: str) -> None:
        """ServerContext.hand_over; ends this process's part of the session."""
        assert self.ctx.hand_over is not None and result.user is not None
        username = result.username or result.user.username
        state = {"result": {"username": result.username, "master_user": result.master_user,
                            "user": dataclasses.asdict(result.user)},
                 "user": dataclasses.asdict(result.user), "username": username,
                 "mech": mech, "session_id": self.session_id}
        error = await self.ctx.hand_over(self.conn, "sieve", state)
        self.handed_over = True
        if error is not None:
            login_log.info(f"Login: {self.login_fields(username, mech)}")
            get_log(f"managesieve({username})").error(error)
            await self._bye('BYE "Internal error occurred. Refer to server log for more information."\r\n')
        raise _Logout("handed over")

    # --- authenticated ------------------------------------------------------

    async def _store(self, func, *args):  # type: ignore[no-untyped-def]
        assert self.scripts is not None
        return await asyncio.to_thread(func, *args)

    async def cmd_listscripts(self, cmd: Command) -> None:
        assert self.scripts is not None
        names, active = await self._store(lambda: (self.scripts.names(), self.scripts.active()))
        out = b"".join(quote(n) + (b" ACTIVE" if n == active else b"") + b"\r\n" for n in names)
        await self.conn.send(out + response("OK", "Listscripts completed."))

    async def cmd_havespace(self, cmd: Command) -> None:
        assert self.scripts is not None
        if not isinstance(cmd.args[1], int):
            await self.conn.send(response("NO", "Invalid scriptsize argument."))
            return
        await self._store(self.scripts.have_space, _text(cmd.args[0]), cmd.args[1])
        await self.conn.send(response("OK", "Putscript would succeed."))

    def _log_failure(self, text: str, exc: ScriptError) -> None:
        # Pigeonhole logs storage failures, not compile errors (cmd-putscript.c).
        if exc.code or not str(exc).endswith("\r\n"):
            self.log.info(f"{text}: {exc}")

    async def cmd_putscript(self, cmd: Command) -> None:
        assert self.scripts is not None
        name = _text(cmd.args[0])
        if not isinstance(cmd.args[1], bytes):
            await self.conn.send(response("NO", "Error in MANAGESIEVE command PUTSCRIPT: "
                                                "Invalid arguments."))
            return
        try:
            await self._store(self.scripts.put, name, cmd.args[1])
        except ScriptError as exc:
            if not exc.code.startswith("QUOTA"):
                self._log_failure(f"Failed to store script `{name}'", exc)
            raise
        await self.conn.send(response("OK", "PUTSCRIPT completed."))

    async def cmd_checkscript(self, cmd: Command) -> None:
        assert self.scripts is not None
        # CHECKSCRIPT reports without a script-name prefix (name "").
        await self._store(self.scripts.check, "", _bytes(cmd.args[0]))
        await self.conn.send(response("OK", "Script checked successfully."))

    async def cmd_getscript(self, cmd: Command) -> None:
        assert self.scripts is not None
        name = _text(cmd.args[0])
        try:
            content = await self._store(self.scripts.get, name)
        except ScriptError as exc:
            self._log_failure(f"Failed to retrieve script `{name}'", exc)
            raise
        await self.conn.send(b"{%d}\r\n" % len(content) + content + b"\r\n"
                             + response("OK", "Getscript completed."))

    async def cmd_setactive(self, cmd: Command) -> None:
        assert self.scripts is not None
        name = _text(cmd.args[0])
        try:
            changed = await self._store(self.scripts.set_active, name)
        except ScriptError as exc:
            self._log_failure(f"Failed to open script `{name}' for activation", exc)
            raise
        if name == "":
            text = "Active script is now deactivated." if changed else "No scripts currently active."
        else:
            text = "Setactive completed."
        await self.conn.send(response("OK", text))

    async def cmd_deletescript(self, cmd: Command) -> None:
        assert self.scripts is not None
        name = _text(cmd.args[0])
        try:
            await self._store(self.scripts.delete, name)
        except ScriptError as exc:
            self._log_failure(f"Failed to delete script `{name}'", exc)
            raise
        await self.conn.send(response("OK", "Deletescript completed."))

    async def cmd_renamescript(self, cmd: Command) -> None:
        assert self.scripts is not None
        old, new = _text(cmd.args[0]), _text(cmd.args[1])
        try:
            await self._store(self.scripts.rename, old, new)
        except ScriptError as exc:
            if exc.code == "NONEXISTENT":
                self._log_failure(f"Failed to open script `{old}' for rename to `{new}'", exc)
            else:
                self._log_failure(f"Failed to rename script `{old}' to `{new}'", exc)
            raise
        await self.conn.send(response("OK", "Renamescript completed."))


def _text(arg: bytes | int) -> str:
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _bytes(arg: bytes | int) -> bytes:
    return arg if isinstance(arg, bytes) else str(arg).encode()


def _b64(arg: bytes | int) -> bytes | None:
    try:
        return base64.b64decode(_bytes(arg), validate=True)
    except (binascii.Error, ValueError):
        return None


# Pigeonhole lists its SIEVE capability in registration order.
_ORDER = ["fileinto", "reject", "envelope", "encoded-character", "vacation", "subaddress", "comparator-i;ascii-numeric", "relational", "regex", "imap4flags", "copy", "include", "variables", "body", "enotify", "environment", "mailbox", "date", "index", "ihave", "duplicate", "mime", "foreverypart", "extracttext", "vacation-seconds", "spamtest", "spamtestplus", "virustest"]


def _PIGEONHOLE_ORDER(name: str) -> int:
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


S = ManageSieveSession
_ANY_STATE = {"CAPABILITY": S.cmd_capability, "NOOP": S.cmd_noop, "LOGOUT": S.cmd_logout}
_NOT_AUTHED = {"STARTTLS": S.cmd_starttls, "AUTHENTICATE": S.cmd_authenticate}
_AUTHED = {"LISTSCRIPTS": S.cmd_listscripts, "HAVESPACE": S.cmd_havespace,
           "PUTSCRIPT": S.cmd_putscript, "CHECKSCRIPT": S.cmd_checkscript,
           "GETSCRIPT": S.cmd_getscript, "SETACTIVE": S.cmd_setactive,
           "DELETESCRIPT": S.cmd_deletescript, "RENAMESCRIPT": S.cmd_renamescript}
_ARGS = {"NOOP": (0, 1), "AUTHENTICATE": (1, 2), "HAVESPACE": (2, 2), "PUTSCRIPT": (2, 2),
         "CHECKSCRIPT": (1, 1), "GETSCRIPT": (1, 1), "SETACTIVE": (1, 1), "DELETESCRIPT": (1, 1),
         "RENAMESCRIPT": (2, 2)}


async def resume_connection(conn: Connection, ctx: ServerContext, state: dict[str, Any]) -> None:
    """Privilege separation: the session of a login another process did."""
    session = ManageSieveSession(conn, ctx)
    session.session_id = str(state["session_id"])
    data = dict(state["result"])
    result = AuthResult(AuthStatus.OK, username=str(data.get("username") or ""),
                        user=UserInfo(**data["user"]), master_user=str(data.get("master_user") or ""))
    try:
        await session.run(resume=(result, str(state.get("mech") or "")))
    finally:
        live = getattr(session, "_live", None)
        if live is not None:
            ctx.sessions.remove(live)


async def handle_connection(conn: Connection, ctx: ServerContext) -> None:
    session = ManageSieveSession(conn, ctx)
    try:
        await session.run()
    finally:
        live = getattr(session, "_live", None)
        if live is not None:
            ctx.sessions.remove(live)
