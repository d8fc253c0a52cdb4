"""Login services' connection limits as Dovecot's master applies them
(src/master/service-monitor.c service_drop_connections, login-common
client_destroy_oldest; behaviour observed from 2.3.19).

Dovecot runs one login process per pre-login connection (service_count = 1,
the default), at most `process_limit` of them. When a new connection finds
the limit reached, the master warns (at most once a second) and tells the
login processes to make room: each drops its waiting client with
`Connection queue full`, so every pre-login connection of the service goes
and the new one is served. With service_count = 0 ("high-performance
mode") a process holds up to `client_limit` clients and only the oldest one
is dropped. One process here: the same arithmetic on the pre-login
connections of each login service; logged-in sessions never count.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from maa_server import logs

# service_drop_connections() warns at most this often per service.
DROP_WARN_INTERVAL_SECS = 1.0
# What a dropped client hears (imap/pop3-login client_notify_disconnect).
QUEUE_FULL_GOODBYES: dict[str, bytes] = {
    "imap": b"* BYE Connection queue full\r\n",
    "pop3": b"-ERR Connection queue full\r\n",
    "sieve": b'BYE "Connection queue full"\r\n',  # managesieve-login client_send_bye
}
QUEUE_FULL_REASON = "Connection queue full"


@dataclass(frozen=True)
class LoginLimit:
    """How many pre-login connections a login service holds at once."""

    service: str
    process_limit: int
    client_limit: int
    service_count: int

    @property
    def connections(self) -> int:
        if self.service_count == 1:
            return self.process_limit
        return self.process_limit * self.client_limit

    @property
    def drops_all(self) -> bool:
        """One client per process: every process drops its client."""
        return self.service_count == 1

    @property
    def limit_name(self) -> str:
        """Which setting the warning names (service_drop_connections)."""
        return "process_limit" if self.process_limit > 1 else "client_limit"

    @property
    def limit_value(self) -> int:
        return self.process_limit if self.process_limit > 1 else self.client_limit


def _int(value: Any, default: int) -> int:
    try:
        number = int(str(value).strip() or default)
    except ValueError:
        return default
    return number


def login_limit(cfg: Any, service: str) -> LoginLimit | None:
    """The limit of a `*-login` service; None for other services (LMTP has
    no pre-login phase here; its process_limit has no meaning in one
    process)."""
    if not service.endswith("-login"):
        return None
    section = getattr(cfg, "services", {}).get(service)
    settings = section.settings if section is not None else {}
    process_limit = _int(settings.get("process_limit", "0"), 0) or _int(cfg.get("default_process_limit"), 100)
    client_limit = _int(settings.get("client_limit", "0"), 0) or _int(cfg.get("default_client_limit"), 1000)
    service_count = _int(settings.get("service_count", "1"), 1)
    return LoginLimit(service, max(process_limit, 1), max(client_limit, 1), service_count)


@dataclass
class DropWarnings:
    """The master's `... reached, client connections are being dropped`
    warning, at most once per DROP_WARN_INTERVAL_SECS per service."""

    last: dict[str, float] = field(default_factory=dict)

    def warn(self, limit: LoginLimit) -> None:
        now = time.monotonic()
        if now - self.last.get(limit.service, -DROP_WARN_INTERVAL_SECS) < DROP_WARN_INTERVAL_SECS:
            return
        self.last[limit.service] = now
        logs.get_log("master").warning(
            f"service({limit.service}): {limit.limit_name} ({limit.limit_value}) reached, "
            "client connections are being dropped")


class WaitingConnection(Protocol):
    """What the master keeps of an accepted connection (master.OpenConnection)."""

    protocol: str
    service: str
    conn: Any  # protocols.connection.Connection
    task: Any  # asyncio.Task


@dataclass
class PreLogin:
    """The pre-login connections of each login service, in accept order,
    keyed by id(conn). A login takes its connection out (logged_in), so a
    limit check never walks the logged-in sessions."""

    waiting: dict[str, dict[int, WaitingConnection]] = field(default_factory=dict)
    warnings: DropWarnings = field(default_factory=DropWarnings)

    def add(self, entry: WaitingConnection) -> None:
        self.waiting.setdefault(entry.service, {})[id(entry.conn)] = entry

    def discard(self, entry: WaitingConnection) -> None:
        self.waiting.get(entry.service, {}).pop(id(entry.conn), None)

    def logged_in(self, conn: Any) -> None:
        for entries in self.waiting.values():
            entries.pop(id(conn), None)

    def make_room(self, cfg: Any, service: str) -> None:
        """Before serving a new connection: a service at its limit drops
        its waiting clients (all of them, or the oldest one; see above)."""
        limit = login_limit(cfg, service)
        if limit is None:
            return
        waiting = [e for e in self.waiting.get(service, {}).values()
                   if not e.task.done() and not e.conn.closing]
        if len(waiting) < limit.connections:
            return
        self.warnings.warn(limit)
        for entry in waiting if limit.drops_all else waiting[:1]:  # dicts keep accept order
            entry.conn.disconnect_reason = QUEUE_FULL_REASON
            goodbye = QUEUE_FULL_GOODBYES.get(entry.protocol)
            if goodbye:
                with contextlib.suppress(Exception):
                    entry.conn.write(goodbye)
            entry.conn.close_soon()
