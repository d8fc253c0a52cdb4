"""Any-state and login commands: CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN,
AUTHENTICATE (RFC 3501 6.1-6.2, RFC 4959 SASL-IR), ID (RFC 2971), ENABLE
(RFC 5161), CHECK, COMPRESS (RFC 4978).

Replies and log lines follow Dovecot's imap-login (client-authenticate.c,
spec sections 6.2 and 7).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import shlex
import socket
import time
from typing import TYPE_CHECKING, NoReturn

from maa_server.auth.interface import AuthResult, AuthStatus, UserInfo
from maa_server.auth.mail_access import mail_access_refusal
from maa_server.logs import get_log
from maa_server.protocols.connection import LineTooLong
from maa_server.protocols.imap import args as A
from maa_server.protocols.imap.errors import ImapBye
from maa_server.protocols.imap.responses import nstring
from maa_server.protocols.imap.tokens import Arg, Atom, String

if TYPE_CHECKING:
    from maa_server.protocols.imap.session import ImapSession

PLAINTEXT_MECHS = {"PLAIN", "LOGIN"}
INTERNAL_ERROR = "Internal error occurred. Refer to server log for more information."

# imap_id_send `*` values (src/lib-imap/imap-id.c).
_BUILTIN_ID = {
    "name": "Dovecot",
    "version": "2.3.19.1",
    "os": os.uname().sysname,
    "os-version": os.uname().release,
    "support-url": "http://www.dovecot.org/",
    "support-email": "dovecot@dovecot.org",
    "revision": "9b53102964",
}


async def cmd_capability(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    # Arguments are ignored, as Dovecot does (observed: `CAPABILITY x`).
    s.untagged("CAPABILITY " + s.capability_string())
    if s.user is None:
        # A client that asks explicitly (not just after STARTTLS) is taken to
        # ignore [CAPABILITY] codes (imap-login-client.c cmd_capability).
        if not s.starttls_done:
            s.client_sent_capability = True
        return "Pre-login capabilities listed, post-login capabilities have more."
    return "Capability completed."


async def cmd_noop(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    # Dovecot ignores arguments to NOOP (observed).
    await s.report_changes(allow_expunge=True, full_sync=True)
    return "NOOP completed."


async def cmd_check(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    # Arguments are ignored (cmd-check.c).
    await s.report_changes(allow_expunge=True, full_sync=True)
    return "Check completed."


async def cmd_logout(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    from maa_server.protocols.imap.session import LOGOUT

    A.count(args, 0)
    s.write(b"* BYE Logging out\r\n")
    text = "Logout completed" + (s.timing() if s.user else ".")
    s.write(f"{tag} OK {text}\r\n".encode())
    s.state = LOGOUT
    return None


async def cmd_starttls(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    A.count(args, 0)
    if s.conn.secured:
        s.tagged(tag, "BAD", "TLS is already active.")
        return None
    if not s.starttls_available():
        s.tagged(tag, "BAD", "TLS support isn't enabled.")
        return None
    s.write(f"{tag} OK Begin TLS negotiation now.\r\n".encode())
    await s.conn.drain()
    await s.conn.start_tls()
    s.starttls_done = True
    s.settings = s.load_settings()  # local_name filters may apply now (SNI)
    s.parser.reset()
    return None


# -- authentication -------------------------------------------------------------


def _note_attempt(s: ImapSession, user: str, method: str) -> None:
    s.auth_attempts += 1
    if s.first_attempt_at is None:
        s.first_attempt_at = time.monotonic()
    s.last_user = user[:80]
    s.last_method = method


def _verbose(s: ImapSession) -> bool:
    return bool(s.setting("auth_verbose", False))


async def cmd_login(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    A.count(args, 2)
    user, password = A.astring(args[0]), A.astring(args[1])
    client = s.client_info()
    if s.tls_required_missing() or not s.ctx.auth.plaintext_allowed(client):
        s.plaintext_refused = True
        if _verbose(s):
            s.login_log.info(f"Login failed: Plaintext authentication disabled: {s.login_fields()}")
        s.untagged("BAD [ALERT] Plaintext authentication not allowed without SSL/TLS, but your "
                   "client did it anyway. If anyone was listening, the password was exposed.")
        s.tagged(tag, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed on "
                 "non-secure (SSL/TLS) connections.")
        return None
    _note_attempt(s, user, "PLAIN")
    result = await s.ctx.auth.verify_plain(user, password, client, "PLAIN")
    await _finish_auth(s, tag, result)
    return None


async def cmd_authenticate(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    A.count(args, 1, 2)
    mech = A.atom(args[0]).upper()
    client = s.client_info()
    if s.tls_required_missing():
        s.last_method = mech
        s.tagged(tag, "NO", "[PRIVACYREQUIRED] Authentication not allowed until SSL/TLS is enabled.")
        return None
    exchange = s.ctx.auth.start_sasl(mech, client)
    if exchange is None:
        if mech in PLAINTEXT_MECHS and not s.ctx.auth.plaintext_allowed(client):
            s.plaintext_refused = True
            s.last_method = mech
            s.tagged(tag, "NO", "[PRIVACYREQUIRED] Plaintext authentication disabled.")
            if _verbose(s):
                s.login_log.info(f"Authenticate {mech} failed: Plaintext authentication "
                                 f"disabled.: {s.login_fields()}")
        else:
            s.tagged(tag, "NO", "Unsupported authentication mechanism.")
        return None
    response: bytes | None = None
    if len(args) == 2:  # RFC 4959 initial response; "=" is an empty one
        text = A.astring(args[1])
        response = b"" if text == "=" else _b64(text)
        if response is None:
            s.tagged(tag, "BAD", "Invalid base64 data in initial response")
            return None
    _note_attempt(s, s.last_user, mech)
    while True:
        step = await exchange.step(response)
        if step.result is not None:
            break
        challenge = base64.b64encode(step.challenge or b"")
        await s.conn.send(b"+ " + challenge + b"\r\n")
        s.sasl_started = time.monotonic()
        try:
            line = await asyncio.wait_for(s.conn.readline(s.max_line), s.idle_timeout())
        except LineTooLong:
            s.sasl_started = None
            s.tagged(tag, "BAD", "Authentication response too large")
            return None
        s.sasl_started = None
        line = line.rstrip(b"\r\n")
        if line == b"*":
            s.tagged(tag, "BAD", "Authentication aborted by client.")
            return None
        response = _b64(line.decode("ascii", "replace"))
        if response is None:
            s.tagged(tag, "NO", "[ALERT] Invalid base64 in response")  # as Dovecot
            return None
    if step.result.username:
        s.last_user = step.result.username[:80]
    await _finish_auth(s, tag, step.result)
    return None


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


async def _finish_auth(s: ImapSession, tag: str, result: AuthResult) -> None:
    if result.status is AuthStatus.OK and result.user is not None:
        s.auth_successes += 1
        limit = int(s.setting("mail_max_userip_connections", 10))
        username = result.username or result.user.username
        if limit and s.ctx.sessions.count(username, s.conn.remote_ip, "imap") >= limit:
            # Observed from Dovecot 2.3.19: tagged NO [LIMIT], then the login
            # process disconnects (login-common client_auth_result).
            text = ("Maximum number of connections from user+IP exceeded "
                    f"(mail_max_userip_connections={limit})")
            s.tagged(tag, "NO", f"[LIMIT] {text}")
            raise ImapBye(text)
        if s.ctx.hand_over is not None:
            await _hand_over(s, tag, result.user, username)
        await complete_login(s, tag, result.user, username)
        return
    if result.status is AuthStatus.TEMPFAIL:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        s.tagged(tag, "NO", f"[UNAVAILABLE] Temporary authentication failure. "
                 f"[{socket.gethostname()}:{stamp}]")
    elif result.status is AuthStatus.NOLOGIN and result.reason:
        s.tagged(tag, "NO", f"[CONTACTADMIN] {result.reason}")
    elif result.reason == "Authorization failed":
        s.tagged(tag, "NO", "[AUTHORIZATIONFAILED] Authorization failed")
    else:
        s.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed.")


async def complete_login(s: ImapSession, tag: str, user: UserInfo, username: str) -> None:
    """Open the mail session and answer the LOGIN/AUTHENTICATE: here, or in
    the user's worker after a hand-over (session.resume_connection)."""
    refusal = mail_access_refusal(user, s.ctx.config)
    if refusal:  # mail-storage-service.c: the mail process refuses the user
        _refuse_after_login(s, tag, username, refusal)
    try:
        await s.begin_mail_session(user, username)
    except Exception as exc:  # storage cannot be opened: Dovecot's BYE
        s.login_log.info(f"Login: {s.login_fields()}")
        s.log.error(str(exc))
        s.write(f"* BYE {INTERNAL_ERROR}\r\n".encode())
        raise ImapBye(str(exc)) from exc
    s.login_log.info(f"Login: {s.login_fields()}")
    caps = s.capability_string()
    if s.client_sent_capability:
        s.write(f"* CAPABILITY {caps}\r\n{tag} OK Logged in\r\n".encode())
    else:
        s.write(f"{tag} OK [CAPABILITY {caps}] Logged in\r\n".encode())


async def _hand_over(s: ImapSession, tag: str, user: UserInfo, username: str) -> None:
    """Privilege separation: the user's worker answers the login and runs
    the session (ServerContext.hand_over). Ends this process's part with
    SessionHandedOver; a refused user gets Dovecot's answer (observed from
    2.3.19 for a uid under first_valid_uid)."""
    assert s.ctx.hand_over is not None
    error = await s.ctx.hand_over(s.conn, "imap", s.handover_state(tag, user, username))
    s.handed_over = True
    if error is None:
        raise ImapBye("handed over")
    _refuse_after_login(s, tag, username, error)


def _refuse_after_login(s: ImapSession, tag: str, username: str, error: str) -> NoReturn:
    """The login succeeded but the mail process refused the user (e.g. a uid
    under first_valid_uid): Dovecot's answer, observed from 2.3.19."""
    s.login_log.info(f"Login: {s.login_fields()}")
    get_log(f"imap({username})").error(error)
    s.write(f"{tag} OK Logged in, but initialization failed.\r\n* BYE {INTERNAL_ERROR}\r\n".encode())
    raise ImapBye(error)


# -- ID, ENABLE, COMPRESS -------------------------------------------------------


def _id_fields(setting: str) -> list[tuple[str, str | None]]:
    try:
        words = shlex.split(setting)
    except ValueError:
        words = setting.split()
    out: list[tuple[str, str | None]] = []
    for key, value in zip(words[0::2], words[1::2]):
        if value == "*":
            out.append((key, _BUILTIN_ID.get(key.lower())))
        else:
            out.append((key, value))
    return out


def _id_response(s: ImapSession) -> bytes:
    fields = _id_fields(str(s.setting("imap_id_send", "name *")))
    if not fields:
        return b"* ID NIL\r\n"
    parts = b" ".join(nstring(k) + b" " + nstring(v) for k, v in fields)
    return b"* ID (" + parts + b")\r\n"


async def cmd_id(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    # Like Dovecot (imap-id.c), malformed parameters are ignored, not refused.
    sent: list[tuple[str, str]] = []
    arg = args[0] if args else None
    if isinstance(arg, list):
        for k, v in zip(arg[0::2], arg[1::2]):
            if isinstance(k, String) and isinstance(v, (String, Atom)):
                sent.append((k.text(), "NIL" if isinstance(v, Atom) else v.text()))
    wanted = str(s.setting("imap_id_log", "")).split()
    if wanted and sent:
        logged = [f"{k}={v}" for k, v in sent if "*" in wanted or k.lower() in
                  (w.lower() for w in wanted)]
        if logged:
            s.log.info(f"ID sent: {', '.join(logged)}" +
                       (f": {s.login_fields()}" if s.user is None else ""))
    s.write(_id_response(s))
    return "ID completed."


async def cmd_enable(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    if s.user is None:
        # imap-login accepts ENABLE and ignores it (observed from Dovecot 2.3).
        s.write(f"* ENABLED\r\n{tag} OK ENABLE ignored in non-authenticated state.\r\n".encode())
        return None
    newly: list[str] = []
    had_condstore = "CONDSTORE" in s.enabled
    for arg in args:
        name = A.atom(arg).upper()
        # Dovecot lists every known extension asked for, even if already on
        # or asked twice (observed: `* ENABLED CONDSTORE CONDSTORE`).
        if name in ("CONDSTORE", "QRESYNC"):
            s.enabled.add(name)
            newly.append(name)
    if "QRESYNC" in s.enabled:
        s.enabled.add("CONDSTORE")  # RFC 7162 3.2.3: QRESYNC implies CONDSTORE
    if s.selected is not None and not had_condstore and "CONDSTORE" in s.enabled:
        # RFC 7162 3.1.8 / Dovecot: the selected mailbox's HIGHESTMODSEQ now.
        s.untagged(f"OK [HIGHESTMODSEQ {s.selected.mailbox.highest_modseq}] Highest")
    if newly:  # nothing known asked for (or no argument): just the OK
        s.untagged("ENABLED" + "".join(" " + n for n in newly))
    return "Enabled."


async def cmd_compress(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    if not s._compress_enabled():
        # Without the imap_zlib plugin Dovecot has no such command (observed).
        s.tagged(tag, "BAD", "Error in IMAP command COMPRESS: Unknown command.")
        return None
    A.count(args, 1)
    if A.atom(args[0]).upper() != "DEFLATE":
        s.tagged(tag, "NO", "Unknown compression mechanism.")
        return None
    if s.conn.compressed:
        s.tagged(tag, "NO", "[COMPRESSIONACTIVE] COMPRESSION already enabled.")
        return None
    s.tagged(tag, "OK", "Begin compression.")
    await s.conn.drain()
    s.conn.start_compress()
    return None
