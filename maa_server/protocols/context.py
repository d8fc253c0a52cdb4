"""What every protocol session is handed: config, auth, mail stores, the
registry of live sessions. Built by the daemon; built by tests the same way."""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from maa_server.auth.interface import Authenticator, UserInfo
from maa_server.storage.interface import MailStore


def new_session_id() -> str:
    """Dovecot's session id shape: 12 random bytes, base64 without padding
    (e.g. `x5Wz5TBhOLt/AAAB`, 16 characters)."""
    return base64.b64encode(os.urandom(12)).decode("ascii")


@dataclass(eq=False)
class LiveSession:
    """One logged-in session, for `maa-adm who`/`kick` and per-user limits."""

    user: str
    protocol: str
    remote_ip: str
    session_id: str
    kick: Callable[[], None]
    # The session's Connection, so that the daemon's shutdown can tell
    # logged-in connections from pre-auth ones (their goodbyes differ).
    connection: Any = None


@dataclass
class SessionRegistry:
    sessions: set[LiveSession] = field(default_factory=set)

    def add(self, session: LiveSession) -> None:
        self.sessions.add(session)

    def remove(self, session: LiveSession) -> None:
        self.sessions.discard(session)

    def count(self, user: str, remote_ip: str, protocol: str) -> int:
        """For mail_max_userip_connections (per user, IP and protocol)."""
        return sum(1 for s in self.sessions
                   if s.user == user and s.remote_ip == remote_ip and s.protocol == protocol)

    def kick(self, user: str) -> int:
        victims = [s for s in self.sessions if s.user == user]
        for s in victims:
            s.kick()
        return len(victims)


@dataclass
class ServerContext:
    config: Any  # maa_server.config.Config
    auth: Authenticator
    # Opens (or returns the cached) MailStore for a logged-in user.
    open_store: Callable[[UserInfo], Awaitable[MailStore]]
    ssl_context: ssl.SSLContext | None = None
    sessions: SessionRegistry = field(default_factory=SessionRegistry)
    # Privilege separation (daemon/privsep): after a successful login the
    # protocol calls hand_over(conn, protocol, state) instead of opening the
    # store itself; the daemon moves the connection to a process running as
    # the user, where `resume_connection(conn, ctx, state)` of the protocol's
    # session module carries on. It returns None once the session has left
    # this process, or Dovecot's error line when the user may not log in
    # (then the protocol answers its internal-error reply). None: one process.
    hand_over: Callable[[Any, str, dict[str, Any]], Awaitable[str | None]] | None = None
    # Privilege separation for LMTP: deliver(user, data, envelope, log) saves
    # one recipient's copy from a process running as the user; it raises
    # what delivery.deliver_message raises. None: deliver here.
    deliver: Callable[..., Awaitable[None]] | None = None
