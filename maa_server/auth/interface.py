"""What the protocol layers see of authentication.

A login process (IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS/AUTH, ManageSieve)
holds an `Authenticator` and a `ClientInfo` for its connection. It never
sees passdbs, schemes or hashes: those live behind this interface in
`maa_server.auth`.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The connection facts that auth rules and log lines need."""

    protocol: str  # "imap", "pop3", "lmtp", "sieve"
    remote_ip: str = ""
    remote_port: int = 0
    local_ip: str = ""
    local_port: int = 0
    secured: bool = False  # TLS, or a connection Dovecot counts as secure
    session_id: str = ""  # Dovecot's base64 session id, for log lines
    local_name: str = ""  # SNI name, if any
    cert_username: str = ""  # from a verified TLS client certificate


@dataclass(slots=True)
class UserInfo:
    """A userdb answer: who the mail belongs to and where it lives."""

    username: str
    uid: int | None = None
    gid: int | None = None
    home: str = ""
    mail: str = ""  # per-user mail_location override ("" = use the setting)
    extra: dict[str, str] = field(default_factory=dict)  # other userdb fields


class AuthStatus(enum.Enum):
    OK = "ok"
    FAIL = "fail"  # wrong password, unknown user, denied: same for the client
    TEMPFAIL = "tempfail"  # internal failure: [UNAVAILABLE] / -ERR [SYS/TEMP]
    NOLOGIN = "nologin"  # passdb said nologin (reason goes to the client)


@dataclass(slots=True)
class AuthResult:
    status: AuthStatus
    username: str = ""  # the normalised login user (the user acted as)
    user: UserInfo | None = None  # filled on OK
    master_user: str = ""  # set when a master user logged in as `username`
    reason: str = ""  # text for the client when Dovecot shows one
    # For the log line: "auth failed, N attempts" etc. are the caller's;
    # this says why, for auth_verbose.
    log_reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK


@dataclass(slots=True)
class SaslStep:
    """One server turn of a SASL exchange: a challenge or a final result."""

    challenge: bytes | None = None  # raw bytes; the protocol layer base64s it
    result: AuthResult | None = None


class SaslExchange(abc.ABC):
    """A running SASL mechanism (RFC 4422), fed decoded client responses."""

    mechanism: str

    @abc.abstractmethod
    async def step(self, response: bytes | None) -> SaslStep:
        """`None` means the client sent no initial response; `b""` an empty
        one ("=" in SASL-IR). Returns a challenge or the final result."""


class Authenticator(abc.ABC):
    @abc.abstractmethod
    def mechanisms(self, client: ClientInfo) -> list[str]:
        """SASL mechanisms to advertise on this connection, upper case.

        PLAIN/LOGIN are left out where plaintext auth is disallowed."""

    @abc.abstractmethod
    def plaintext_allowed(self, client: ClientInfo) -> bool:
        """False when disable_plaintext_auth forbids LOGIN/USER/PLAIN here
        (not TLS, not loopback, not in login_trusted_networks)."""

    @abc.abstractmethod
    async def verify_plain(self, username: str, password: str, client: ClientInfo,
                           mechanism: str = "PLAIN") -> AuthResult:
        """IMAP LOGIN, POP3 USER/PASS. Applies the failure delay itself."""

    @abc.abstractmethod
    def start_sasl(self, mechanism: str, client: ClientInfo) -> SaslExchange | None:
        """None if the mechanism is unknown or not allowed here."""

    @abc.abstractmethod
    async def lookup_user(self, username: str, client: ClientInfo | None = None) -> UserInfo | None:
        """userdb lookup only (LMTP RCPT, maa-lda -d, maa-adm user)."""
