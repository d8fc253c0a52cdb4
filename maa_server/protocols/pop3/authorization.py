"""POP3 AUTHORIZATION state: what Dovecot's pop3-login process does.

CAPA (RFC 2449), STLS (RFC 2595), USER/PASS (RFC 1939 section 7), AUTH
(RFC 5034), APOP, QUIT. Reply texts and log lines follow src/pop3-login/
client.c, client-authenticate.c and src/login-common/ (observed against
Dovecot 2.3.19.1, spec 7.4 and 6.2).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import time
from dataclasses import dataclass, field

from maa_server.auth.interface import AuthResult, AuthStatus, ClientInfo
from maa_server.logs import get_log
from maa_server.protocols.connection import Connection, LineTooLong
from maa_server.protocols.context import ServerContext
from maa_server.protocols.pop3.parser import Command, err, multiline, ok

log = get_log("pop3-login")

# src/login-common/client-common.h: CLIENT_MAX_BAD_COMMANDS
MAX_BAD_COMMANDS = 3
# A SASL response line may carry a large Kerberos token (AUTH_CLIENT_MAX_LINE_LENGTH).
SASL_LINE_LIMIT = 16384

POST_LOGIN_CAPABILITIES = ["CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})
PLAINTEXT_DISALLOWED = "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."


def is_trusted(remote_ip: str, trusted_networks: str) -> bool:
    try:
        address = ipaddress.ip_address(remote_ip)
    except ValueError:
        return False
    for net in trusted_networks.replace(",", " ").split():
        try:
            if address in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def security_word(conn: Connection, trusted: bool) -> str:
    """login_log_format_elements' %c: `TLS`, `secured` (no TLS, but the
    client is on the same IP as us or trusted), or nothing."""
    if conn.secured:
        return "TLS"
    if trusted or (conn.remote_ip and conn.remote_ip == conn.local_ip):
        return "secured"
    return ""


def login_log_fields(user: str, method: str, conn: Connection, security: str,
                     session_id: str, mpid: int | None = None) -> str:
    """`user=<..>, method=.., rip=.., lip=.., mpid=.., TLS, session=<..>`; empty
    elements are dropped except user (spec 6.2)."""
    parts = [f"user=<{user[:80]}>"]
    if method:
        parts.append(f"method={method}")
    if conn.remote_ip:
        parts.append(f"rip={conn.remote_ip}")
    if conn.local_ip:
        parts.append(f"lip={conn.local_ip}")
    if mpid:
        parts.append(f"mpid={mpid}")
    if security:
        parts.append(security)
    if session_id:
        parts.append(f"session=<{session_id}>")
    return ", ".join(parts)


class LoginAborted(Exception):
    """The client quit or broke a rule; `reason` is the log line's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class LoginState:
    """What pop3-login remembers about a connection (for replies and the
    disconnect log line)."""

    session_id: str
    started: float = field(default_factory=time.monotonic)
    user: str = ""  # from USER, or the SASL identity once known
    user_given: bool = False  # USER was sent (even with an empty name)
    method: str = ""
    attempts: int = 0
    first_attempt: float = 0.0
    bad_commands: int = 0
    tried_disallowed_plaintext: bool = False
    tried_unsupported_mech: bool = False
    aborted_auth: bool = False
    tempfail: bool = False
    successful_auths: int = 0
    sasl_pending_since: float = 0.0
    apop_challenge: str = ""

    def detail(self) -> str:
        """The parenthesised detail of a pre-login disconnect line
        (client_get_extra_disconnect_reason() in login-common)."""
        now = time.monotonic()
        if self.sasl_pending_since:
            return f"client didn't finish SASL auth, waited {int(now - self.sasl_pending_since)} secs"
        if self.successful_auths:
            return f"internal failure, {self.successful_auths} successful auths"
        if self.tried_disallowed_plaintext:
            return "tried to use disallowed plaintext auth"
        if self.tried_unsupported_mech and not self.attempts:
            return "tried to use unsupported auth mechanism"
        if self.aborted_auth and not self.attempts:
            return "aborted authentication"
        if self.tempfail:
            return "auth service reported temporary failure"
        if not self.attempts:
            return f"no auth attempts in {int(now - self.started)} secs"
        return f"auth failed, {self.attempts} attempts in {int(now - self.first_attempt)} secs"


class Authorization:
    """Runs commands until a login succeeds (returns the AuthResult)."""

    def __init__(self, conn: Connection, ctx: ServerContext, state: LoginState,
                 trusted: bool) -> None:
        self.conn = conn
        self.ctx = ctx
        self.state = state
        self.trusted = trusted

    # --- helpers ---------------------------------------------------------

    def client_info(self) -> ClientInfo:
        return ClientInfo(
            protocol="pop3", remote_ip=self.conn.remote_ip, remote_port=self.conn.remote_port,
            local_ip=self.conn.local_ip, local_port=self.conn.local_port,
            secured=self.conn.secured or self.security == "secured",
            session_id=self.state.session_id, local_name=self.conn.sni_name,
        )

    @property
    def security(self) -> str:
        return security_word(self.conn, self.trusted)

    def log_fields(self, mpid: int | None = None) -> str:
        return login_log_fields(self.state.user, self.state.method, self.conn,
                                self.security, self.state.session_id, mpid)

    def tls_available(self) -> bool:
        return self.conn.server_ssl is not None and not self.conn.secured

    def capabilities(self) -> list[str]:
        caps = list(POST_LOGIN_CAPABILITIES)
        if self.tls_available():
            caps.append("STLS")
        client = self.client_info()
        if self.ctx.auth.plaintext_allowed(client):
            caps.append("USER")
        caps.append(" ".join(["SASL", *self.ctx.auth.mechanisms(client)]))
        return caps

    def _note_attempt(self, method: str) -> None:
        self.state.method = method
        self.state.attempts += 1
        if not self.state.first_attempt:
            self.state.first_attempt = time.monotonic()

    def _verbose(self) -> bool:
        try:
            return bool(self.ctx.config.get("auth_verbose", protocol="pop3"))
        except Exception:  # noqa: BLE001 - a log nicety must not break login
            return False

    def _failure_reply(self, result: AuthResult) -> bytes:
        if result.status is AuthStatus.TEMPFAIL:
            self.state.tempfail = True
            return err("[SYS/TEMP] " + (result.reason or "Temporary authentication failure."))
        if result.status is AuthStatus.NOLOGIN:
            # The password was right: Dovecot logs "(internal failure, N
            # successful auths)" for such a client (observed).
            self.state.successful_auths += 1
            return err("[AUTH] " + (result.reason or "Login disabled."))
        return err("[AUTH] " + (result.reason or "Authentication failed."))

    # --- commands ----------------------------------------------------------

    async def handle(self, cmd: Command) -> AuthResult | None:
        """One command; returns the result of a successful login, else None.
        Raises LoginAborted to end the connection."""
        handler = {
            "CAPA": self.cmd_capa, "USER": self.cmd_user, "PASS": self.cmd_pass,
            "AUTH": self.cmd_auth, "APOP": self.cmd_apop, "STLS": self.cmd_stls,
            "QUIT": self.cmd_quit,
        }.get(cmd.name)
        if handler is None:
            await self.bad_command("Unknown command.")
            return None
        self.state.bad_commands = 0
        return await handler(cmd.args)

    async def bad_command(self, text: str) -> None:
        await self.conn.send(err(text))
        self.state.bad_commands += 1
        if self.state.bad_commands >= MAX_BAD_COMMANDS:
            await self.conn.send(err("Too many invalid bad commands."))
            raise LoginAborted("Disconnected: Too many bad commands")

    async def cmd_capa(self, args: str) -> None:
        await self.conn.send(multiline(ok(), self.capabilities()))

    async def cmd_quit(self, args: str) -> None:
        # pop3-login answers without a final period (observed).
        await self.conn.send(ok("Logging out"))
        raise LoginAborted("Aborted login by logging out")

    async def cmd_stls(self, args: str) -> None:
        if self.conn.secured:
            await self.conn.send(err("TLS is already active."))
            return
        if self.conn.server_ssl is None:
            await self.conn.send(err("TLS support isn't enabled."))
            return
        await self.conn.send(ok("Begin TLS negotiation now."))
        await self.conn.start_tls()

    def _plaintext_refused(self) -> bool:
        if self.ctx.auth.plaintext_allowed(self.client_info()):
            return False
        self.state.tried_disallowed_plaintext = True
        if self._verbose():
            log.info("Login failed: Plaintext authentication disabled: " + self.log_fields())
        return True

    async def cmd_user(self, args: str) -> None:
        if self._plaintext_refused():
            await self.conn.send(err("[AUTH] " + PLAINTEXT_DISALLOWED))
            return
        self.state.user = args
        self.state.user_given = True
        await self.conn.send(ok())

    async def cmd_pass(self, args: str) -> AuthResult | None:
        if not self.state.user_given:
            await self.conn.send(err("No username given."))
            return None
        if self._plaintext_refused():
            await self.conn.send(err("[AUTH] " + PLAINTEXT_DISALLOWED))
            return None
        self._note_attempt("PLAIN")
        result = await self.ctx.auth.verify_plain(self.state.user, args, self.client_info(),
                                                  mechanism="PLAIN")
        if result.ok:
            return result
        await self.conn.send(self._failure_reply(result))
        return None

    async def cmd_apop(self, args: str) -> AuthResult | None:
        # APOP runs as Dovecot's `APOP` SASL mechanism (src/auth/mech-apop.c):
        # the data is challenge NUL user NUL digest. It is only offered when
        # auth_mechanisms names it; the greeting then carries the challenge.
        user, _, digest = args.partition(" ")
        sasl = None
        if self.state.apop_challenge:
            sasl = self.ctx.auth.start_sasl("APOP", self.client_info())
        if sasl is None:
            await self.bad_command("APOP not enabled.")
            return None
        if not user or not digest:
            await self.conn.send(err("Invalid parameters."))
            return None
        self.state.user = user
        self._note_attempt("APOP")
        step = await sasl.step(b"\0".join(
            [self.state.apop_challenge.encode(), user.encode(), digest.encode()]))
        if step.result is not None and step.result.ok:
            return step.result
        await self.conn.send(self._failure_reply(step.result or AuthResult(AuthStatus.FAIL)))
        return None

    async def cmd_auth(self, args: str) -> AuthResult | None:
        if not args:
            # RFC 5034 leaves the bare AUTH undefined; Dovecot lists the
            # mechanisms, which old Outlook versions ask for.
            mechs = self.ctx.auth.mechanisms(self.client_info())
            await self.conn.send(multiline(ok(), mechs))
            return None
        mech, _, initial = args.partition(" ")
        mech = mech.upper()
        client = self.client_info()
        if mech in PLAINTEXT_MECHANISMS and not self.ctx.auth.plaintext_allowed(client):
            self.state.method = mech
            self.state.tried_disallowed_plaintext = True
            await self.conn.send(err("[AUTH] " + PLAINTEXT_DISALLOWED))
            return None
        sasl = self.ctx.auth.start_sasl(mech, client)
        if sasl is None:
            self.state.method = mech
            self.state.tried_unsupported_mech = True
            if self._verbose():
                log.info(f"Authenticate {mech} failed: Unsupported authentication mechanism.: "
                         + self.log_fields())
            await self.conn.send(err("[AUTH] Unsupported authentication mechanism."))
            return None
        self._note_attempt(mech)
        response: bytes | None = None
        if initial:
            decoded = _decode_sasl(initial)
            if decoded is None:
                await self.conn.send(err("[AUTH] Invalid base64 data in initial response"))
                return None
            response = decoded
        self.state.sasl_pending_since = time.monotonic()
        try:
            while True:
                step = await sasl.step(response)
                if step.result is not None:
                    break
                challenge = base64.b64encode(step.challenge or b"").decode("ascii")
                await self.conn.send(b"+ " + challenge.encode("ascii") + b"\r\n")
                try:
                    line = (await self.conn.readline(SASL_LINE_LIMIT)).rstrip(b"\r\n")
                except LineTooLong:
                    await self.conn.send(err("[AUTH] Authentication response too large."))
                    return None
                if line == b"*":
                    self.state.aborted_auth = True
                    self.state.attempts -= 1
                    await self.conn.send(err("Authentication aborted by client."))
                    return None
                decoded = _decode_sasl(line.decode("ascii", "replace"))
                if decoded is None:
                    await self.conn.send(err("[AUTH] Invalid base64 in response"))
                    return None
                response = decoded
        finally:
            self.state.sasl_pending_since = 0.0
        result = step.result
        if result.username:
            self.state.user = result.username
        if result.ok:
            return result
        await self.conn.send(self._failure_reply(result))
        return None


def _decode_sasl(text: str) -> bytes | None:
    """RFC 5034 section 4: `=` is an empty initial response."""
    text = text.strip()
    if text == "=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def apop_challenge(hostname: str) -> str:
    """`<hexpid.hexconnectid.hextime.base64random@hostname>` as pop3-login
    makes it (src/pop3-login/client.c, get_apop_challenge)."""
    # 16 random octets, base64 with its padding (observed: `cEcWnDGYG21lIlPPfznErg==`)
    rand = base64.b64encode(os.urandom(16)).decode("ascii")
    connect_id = int.from_bytes(os.urandom(4), "big")
    return f"<{os.getpid():x}.{connect_id:x}.{int(time.time()):x}.{rand}@{hostname}>"
