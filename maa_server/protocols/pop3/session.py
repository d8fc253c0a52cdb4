"""A POP3 connection from greeting to logout: `handle_connection(conn, ctx)`.

The AUTHORIZATION state runs as Dovecot's pop3-login does
(authorization.py); after a login the maildrop is opened and snapshotted
(mail.py) and the TRANSACTION/UPDATE commands run (transaction.py). Log
lines are Dovecot's (spec 6.2, 6.3) so fail2ban's stock jail works.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import zlib

from maa_server.auth.interface import AuthResult, AuthStatus, UserInfo
from maa_server.auth.mail_access import mail_access_refusal
from maa_server.logs import get_log, mail_process_prefix
from maa_server.protocols.connection import Connection, ConnectionClosed, LineTooLong
from maa_server.protocols.context import LiveSession, ServerContext, new_session_id
from maa_server.protocols.pop3.authorization import (
    Authorization,
    LoginAborted,
    LoginState,
    apop_challenge,
    is_trusted,
)
from maa_server.protocols.pop3.mail import MaildropOpenError, open_maildrop
from maa_server.protocols.pop3.parser import err, ok, parse_command
from maa_server.protocols.pop3.settings import Pop3Settings
from maa_server.protocols.pop3.transaction import QuitSession, Transaction

login_log = get_log("pop3-login")

# src/login-common: an unauthenticated client gets 3 minutes; after login
# Dovecot's pop3 disconnects after 10 minutes without input (RFC 1939
# section 3 asks for at least 10).
LOGIN_TIMEOUT = 180.0
IDLE_TIMEOUT = 600.0
# Dovecot aborts longer lines; we answer -ERR and go on (the line is
# read to its end and thrown away by the Connection).
LOGIN_LINE_LIMIT = 1024
COMMAND_LINE_LIMIT = 4096
INTERNAL_ERROR = "[SYS/TEMP] Internal error occurred. Refer to server log for more information."


def _setting(ctx: ServerContext, name: str, conn: Connection, default: object) -> object:
    try:
        # local_name { } blocks apply by the TLS SNI name, as for IMAP.
        value = ctx.config.get(name, protocol="pop3", local_ip=conn.local_ip or None,
                               remote_ip=conn.remote_ip or None, local_name=conn.sni_name or None)
    except Exception:  # noqa: BLE001 - an unknown setting falls back to Dovecot's default
        return default
    return default if value is None else value


def _hostname(ctx: ServerContext, conn: Connection) -> str:
    name = str(_setting(ctx, "hostname", conn, "") or "")
    return name or os.uname().nodename


async def handle_connection(conn: Connection, ctx: ServerContext) -> None:
    session_id = new_session_id()
    trusted = is_trusted(conn.remote_ip, str(_setting(ctx, "login_trusted_networks", conn, "")))
    state = LoginState(session_id=session_id)
    login = Authorization(conn, ctx, state, trusted)
    greeting = str(_setting(ctx, "login_greeting", conn, "Dovecot ready."))
    mechanisms = str(_setting(ctx, "auth_mechanisms", conn, "plain")).upper().split()
    if "APOP" in mechanisms:
        state.apop_challenge = apop_challenge(_hostname(ctx, conn))
        greeting += " " + state.apop_challenge
    try:
        await conn.send(ok(greeting))
        result = await _login_loop(conn, login, state)
    except LoginAborted as exc:
        login_log.info(f"Disconnected: {exc.reason} ({state.detail()}): {login.log_fields()}")
        await conn.close()
        return
    except ConnectionClosed:
        reason = conn.disconnect_reason or "Connection closed"
        login_log.info(f"Disconnected: {reason} ({state.detail()}): {login.log_fields()}")
        await conn.close()
        return
    try:
        if ctx.hand_over is not None:
            await _hand_over(conn, ctx, login, result)
        else:
            await _mail_session(conn, ctx, login, result)
    finally:
        await conn.close()


async def _hand_over(conn: Connection, ctx: ServerContext, login: Authorization,
                     result: AuthResult) -> None:
    """Privilege separation: the user's worker runs the mail session
    (ServerContext.hand_over, resume_connection). A refused user gets
    Dovecot's answer (observed from 2.3.19 for a uid under first_valid_uid)."""
    assert ctx.hand_over is not None
    user: UserInfo = result.user or UserInfo(username=result.username)
    username = result.username or user.username
    state = {"user": dataclasses.asdict(user), "username": username,
             "result_username": result.username, "login": dataclasses.asdict(login.state),
             "trusted": login.trusted}
    error = await ctx.hand_over(conn, "pop3", state)
    if error is None:
        return
    login.state.user = username
    login_log.info("Login: " + login.log_fields())
    get_log(f"pop3({username})").error(error)
    await _send_quietly(conn, err(INTERNAL_ERROR))


async def resume_connection(conn: Connection, ctx: ServerContext, state: dict[str, object]) -> None:
    """Privilege separation: the mail session of a login another process did."""
    login = Authorization(conn, ctx, LoginState(**state["login"]),  # type: ignore[arg-type]
                          bool(state.get("trusted")))
    result = AuthResult(AuthStatus.OK, username=str(state.get("result_username") or ""),
                        user=UserInfo(**state["user"]))  # type: ignore[arg-type]
    await _mail_session(conn, ctx, login, result)


async def _login_loop(conn: Connection, login: Authorization, state: LoginState) -> AuthResult:
    while True:
        try:
            line = await asyncio.wait_for(conn.readline(LOGIN_LINE_LIMIT), LOGIN_TIMEOUT)
        except TimeoutError:
            await _send_quietly(conn, err("Disconnected for inactivity."))
            raise LoginAborted("Inactivity") from None
        except LineTooLong:
            await login.bad_command("Input line too long.")
            continue
        try:
            result = await login.handle(parse_command(line))
        except (LoginAborted, ConnectionClosed, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. the auth backend failed
            login_log.error(f"Internal error during login: {type(exc).__name__}: {exc}")
            state.tempfail = True
            await conn.send(err("[SYS/TEMP] Temporary authentication failure."))
            continue
        if result is not None:
            return result


async def _send_quietly(conn: Connection, data: bytes) -> None:
    try:
        await asyncio.wait_for(conn.send(data), 5)
    except (TimeoutError, ConnectionClosed):
        pass


async def _mail_session(conn: Connection, ctx: ServerContext, login: Authorization,
                        result: AuthResult) -> None:
    user: UserInfo = result.user or UserInfo(username=result.username)
    username = result.username or user.username
    login.state.user = username
    settings = Pop3Settings.load(ctx.config, conn.local_ip, conn.remote_ip, user.extra,
                                 local_name=conn.sni_name)
    log = get_log(mail_process_prefix("pop3", username, login.state.session_id))

    if ctx.sessions.count(username, conn.remote_ip, "pop3") >= settings.mail_max_userip_connections > 0:
        text = ("Maximum number of connections from user+IP exceeded "
                f"(mail_max_userip_connections={settings.mail_max_userip_connections})")
        await _send_quietly(conn, err("[IN-USE] " + text))
        login_log.info(f"Disconnected: {text}: {login.log_fields()}")
        return
    # As in Dovecot, the login process logs the login once auth succeeded;
    # troubles opening the mailbox are the mail process's lines.
    login_log.info("Login: " + login.log_fields(mpid=os.getpid()))
    refusal = mail_access_refusal(user, ctx.config)
    if refusal:  # mail-storage-service.c: the mail process refuses the user
        # before it has a session prefix (observed: "pop3(user): Error: ...").
        get_log(f"pop3({username})").error(refusal)
        await _send_quietly(conn, err(INTERNAL_ERROR))
        return
    try:
        opened = await open_maildrop(ctx, user, username, settings, log)
    except MaildropOpenError as exc:
        if exc.after_login:
            await _send_quietly(conn, ok("Logged in."))
        await _send_quietly(conn, err(exc.reply))
        reason = exc.log_reason or re.sub(r"^\[[A-Z/-]+\] ", "", exc.reply)
        empty = {"top_count": "0", "top_bytes": "0", "retr_count": "0", "retr_bytes": "0",
                 "deleted_count": "0", "message_count": "0", "message_bytes": "0",
                 "input": "0", "output": "0", "deleted_bytes": "0", "uidl_change": ""}
        log.info(f"Disconnected: {reason} {expand_logout(settings.pop3_logout_format, empty)}")
        return

    kick = _Kick(conn)
    live = LiveSession(user=username, protocol="pop3", remote_ip=conn.remote_ip,
                       session_id=login.state.session_id, kick=kick, connection=conn)
    ctx.sessions.add(live)
    transaction = Transaction(conn, opened.mailbox, opened.maildrop, settings, log,
                              save_uidls=opened.save_uidls)
    in_start, out_start = conn.bytes_in, conn.bytes_out
    reason = "Connection closed"
    try:
        await conn.send(ok("Logged in."))
        reason = await _command_loop(conn, transaction)
    except ConnectionClosed:
        reason = "Server shutting down." if kick.kicked else "Connection closed"
    finally:
        ctx.sessions.remove(live)
        opened.release()
        counters = logout_values(transaction, conn.bytes_in - in_start, conn.bytes_out - out_start)
        log.info(f"Disconnected: {reason} {expand_logout(settings.pop3_logout_format, counters)}")


class _Kick:
    """maa-adm kick and the daemon's SIGTERM: what Dovecot's pop3 process
    says when it is killed (observed from 2.3.19), then close."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.kicked = False

    def __call__(self) -> None:
        self.kicked = True
        if not self.conn.closing:
            self.conn.write(err("[SYS/TEMP] Server shutting down."))
        self.conn.close_soon()


async def _command_loop(conn: Connection, transaction: Transaction) -> str:
    while True:
        try:
            line = await asyncio.wait_for(conn.readline(COMMAND_LINE_LIMIT), IDLE_TIMEOUT)
        except TimeoutError:
            await _send_quietly(conn, err("Disconnected for inactivity."))
            return f"Inactivity - no input for {int(IDLE_TIMEOUT)} secs"
        except LineTooLong:
            await conn.send(err("Input line too long."))
            continue
        cmd = parse_command(line)
        try:
            await transaction.handle(cmd.name, cmd.args)
        except QuitSession as quit_:
            return quit_.reason
        except (ConnectionClosed, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - one failed command must not kill the session
            transaction.log.error(f"{cmd.name} failed: {type(exc).__name__}: {exc}")
            await conn.send(err(INTERNAL_ERROR))


# --- pop3_logout_format --------------------------------------------------------

_LOGOUT_KEYS = {
    "t": "top_count", "p": "top_bytes", "r": "retr_count", "b": "retr_bytes",
    "d": "deleted_count", "m": "message_count", "s": "message_bytes",
    "i": "input", "o": "output", "u": "uidl_change",
}
_LOGOUT_VARIABLE = re.compile(r"%(?:\{([a-z_]+)\}|([a-z%]))")


def logout_values(t: Transaction, bytes_in: int, bytes_out: int) -> dict[str, str]:
    drop = t.maildrop
    return {
        "top_count": str(drop.stats.top_count), "top_bytes": str(drop.stats.top_bytes),
        "retr_count": str(drop.stats.retr_count), "retr_bytes": str(drop.stats.retr_bytes),
        "deleted_count": str(t.deleted_count), "message_count": str(drop.initial_count),
        "message_bytes": str(drop.initial_size), "input": str(bytes_in),
        "output": str(bytes_out), "deleted_bytes": str(drop.deleted_bytes() if t.deleted_count else 0),
        "uidl_change": uidl_change(drop.uidls, drop.deleted if t.deleted_count else set()),
    }


def uidl_change(uidls: list[str], deleted: set[int]) -> str:
    """`%{uidl_change}`: XOR of CRC32s of the UIDLs before and after the
    session (pop3-client.c, client_build_uidl_change_string)."""
    old = new = 0
    for index, uidl in enumerate(uidls):
        crc = zlib.crc32(uidl.encode())
        old ^= crc
        if index not in deleted:
            new ^= crc
    return f"{old:08x} -> {new:08x}"


def expand_logout(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(2) == "%":
            return "%"
        name = match.group(1) or _LOGOUT_KEYS.get(match.group(2) or "", "")
        return values.get(name, "")

    return _LOGOUT_VARIABLE.sub(replace, template)

