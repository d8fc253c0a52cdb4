"""A mail worker: serves the logged-in sessions and deliveries of the
users that share one uid/gid, running as that uid/gid (DESIGN "Processes";
Dovecot's imap/pop3/lmtp mail processes after service_drop_privileges).

Started by the master as root (`python -m maa_server.daemon.privsep.worker
FD LOGLEVEL UID GID GROUPS`, the scrubbed config pickled on stdin), it
loads every module it may need and then drops to the user for good
(setgroups, setgid, setuid: real, effective and saved ids), so nothing it
does afterwards can touch another user's files. Log lines go to the master
as JSON on stderr; the master writes them to the configured log.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import importlib
import json
import logging
import os
import pickle
import pkgutil
import signal
import sys
from pathlib import Path
from typing import Any

from maa_server import logs
from maa_server.auth.interface import (
    Authenticator,
    AuthResult,
    AuthStatus,
    ClientInfo,
    SaslExchange,
    UserInfo,
)
from maa_server.auth.remote import user_from_dict
from maa_server.daemon.privsep.channel import Channel, ChannelClosed
from maa_server.daemon.privsep.drop import drop_privileges
from maa_server.daemon.privsep.handover import receive_connection
from maa_server.protocols.context import LiveSession, ServerContext, SessionRegistry

# protocol -> module with `async resume_connection(conn, ctx, state)`
RESUMERS = {
    "imap": "maa_server.protocols.imap.session",
    "pop3": "maa_server.protocols.pop3.session",
    "sieve": "maa_server.protocols.managesieve.session",
}
# A worker with nothing to do for this long offers to exit (Dovecot's
# default_idle_kill); `service imap { idle_kill = ... }` and its
# siblings set it.
IDLE_EXIT_SECS = 60.0
MAIL_SERVICES = ("imap", "pop3", "lmtp", "managesieve")


def idle_exit_secs(config: Any) -> float:
    from maa_server.config.values import parse_time

    found = []
    for name in MAIL_SERVICES:
        section = getattr(config, "services", {}).get(name)
        text = section.get("idle_kill", "") if section is not None else ""
        with contextlib.suppress(ValueError):
            if text and float(parse_time(text)) > 0:
                found.append(float(parse_time(text)))
    return min(found) if found else IDLE_EXIT_SECS
SHUTDOWN_GRACE_SECS = 3.0

log = logs.get_log("master")


# --- start-up ---------------------------------------------------------------


@functools.cache
def preload_names() -> tuple[str, ...]:
    """Every module the package imports, also inside functions, and every
    codec. Computed once by the master (parsing the sources takes a while)
    and sent to each worker with its configuration."""
    import maa_server

    root = Path(maa_server.__file__).parent
    names: set[str] = set()
    for info in pkgutil.walk_packages([str(root)], prefix="maa_server."):
        if ".cli." in info.name or info.name.endswith(".__main__"):
            continue
        names.add(info.name)
        path = root.joinpath(*info.name.split(".")[1:])
        source = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
        with contextlib.suppress(OSError, SyntaxError, ValueError):
            tree = ast.parse(source.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
    import encodings

    for info in pkgutil.iter_modules(encodings.__path__, prefix="encodings."):
        names.add(info.name)
    return tuple(sorted(names))


def preload(names: tuple[str, ...]) -> None:
    """Import them all before the privilege drop: afterwards the
    interpreter's own files may be unreadable (e.g. a Python under /root),
    and an import that misses there would fail in the middle of a session."""
    for name in names:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


class JsonLogHandler(logging.Handler):
    """One JSON object per line on stderr, for the master to write."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.dumps({"l": record.levelno, "p": getattr(record, "dovecot_prefix", "master"),
                               "m": record.getMessage()}) + "\n"
            data = line.encode()
            while data:
                written = os.write(2, data)
                data = data[written:]
        except Exception:  # noqa: BLE001 - logging must never raise into a session
            self.handleError(record)


class NoLoginHere(Authenticator):
    """A worker serves sessions that already logged in: there is nothing to
    authenticate, so every mechanism is refused (never reached by clients)."""

    def mechanisms(self, client: ClientInfo) -> list[str]:
        return []

    def plaintext_allowed(self, client: ClientInfo) -> bool:
        return False

    async def verify_plain(self, username: str, password: str, client: ClientInfo,
                           mechanism: str = "PLAIN") -> AuthResult:
        return AuthResult(AuthStatus.TEMPFAIL, username=username, log_reason="no auth in a mail process")

    def start_sasl(self, mechanism: str, client: ClientInfo) -> SaslExchange | None:
        return None

    async def lookup_user(self, username: str, client: ClientInfo | None = None) -> UserInfo | None:
        return None


# --- the worker ---------------------------------------------------------------


class WorkerRegistry(SessionRegistry):
    """This process's sessions, mirrored to the master's registry."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker
        # mail_max_userip_connections: what the master counted when it
        # handed the session over (it sees every process's sessions).
        self.counted: dict[tuple[str, str, str], int] = {}

    def add(self, session: LiveSession) -> None:
        super().add(session)
        self.worker.tell({"op": "session-add", "session_id": session.session_id, "user": session.user,
                          "protocol": session.protocol, "remote_ip": session.remote_ip})

    def remove(self, session: LiveSession) -> None:
        if session in self.sessions:
            super().remove(session)
            self.worker.tell({"op": "session-remove", "session_id": session.session_id})
        self.worker.activity()

    def count(self, user: str, remote_ip: str, protocol: str) -> int:
        return self.counted.get((user, remote_ip, protocol), super().count(user, remote_ip, protocol))


class Worker:
    def __init__(self, channel: Channel, config: Any) -> None:
        self.channel = channel
        self.config = config
        self.registry = WorkerRegistry(self)
        self.ctx = ServerContext(config=config, auth=NoLoginHere(), open_store=self._open_store,
                                 ssl_context=None, sessions=self.registry)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.exiting = False
        self.idle_secs = idle_exit_secs(config)
        self.done = asyncio.Event()
        self._idle_handle: asyncio.TimerHandle | None = None
        self._outbox: list[asyncio.Task[None]] = []

    async def _open_store(self, user: UserInfo) -> Any:
        from maa_server.storage.factory import open_mail_store

        return await open_mail_store(self.config, user)

    def tell(self, message: dict[str, Any]) -> None:
        """Send without waiting (from synchronous callers); order is kept."""
        task = asyncio.ensure_future(self._send(message))
        self._outbox.append(task)
        task.add_done_callback(self._outbox.remove)

    async def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(ChannelClosed, OSError):
            await self.channel.send(message)

    def activity(self) -> None:
        """Restart the idle clock; exit when retired and nothing is left."""
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        busy = bool(self.tasks) or bool(self.registry.sessions)
        if busy:
            return
        if self.exiting:
            self.done.set()
            return
        self._idle_handle = asyncio.get_running_loop().call_later(
            self.idle_secs, lambda: self.tell({"op": "idle"}))

    def _track(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)

        def finished(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            self.activity()

        task.add_done_callback(finished)
        self.activity()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(self.shutdown()))
        loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(self.shutdown()))
        loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the master reloads, not us
        reader = asyncio.ensure_future(self._read())
        self.activity()
        await self.done.wait()
        reader.cancel()
        await self._close_stores()

    async def _read(self) -> None:
        try:
            while True:
                message, fds = await self.channel.recv()
                try:
                    self._dispatch(message, fds)
                except Exception as exc:  # noqa: BLE001 - one bad request must not end the others
                    for fd in fds:
                        os.close(fd)
                    log.error(f"mail process: {type(exc).__name__}: {exc}")
        except ChannelClosed:
            # The master is gone: finish what runs, take nothing new.
            self.exiting = True
            self.activity()

    def _dispatch(self, message: dict[str, Any], fds: list[int]) -> None:
        op = message.get("op")
        if op == "session":
            if len(fds) != 1:
                raise ValueError("session without its socket")
            self._track(self._session(message, fds[0]))
        elif op == "deliver":
            self._track(self._deliver(message, fds))
        elif op == "kick":
            sid = str(message.get("session_id", ""))
            for session in list(self.registry.sessions):
                if session.session_id == sid:
                    session.kick()
        elif op == "exit":
            self.exiting = True
            self.activity()
        else:
            for fd in fds:
                os.close(fd)

    async def _session(self, message: dict[str, Any], fd: int) -> None:
        protocol = str(message.get("protocol", ""))
        request_id = message.get("id")
        try:
            module = importlib.import_module(RESUMERS[protocol])
            conn = await receive_connection(fd, message)
        except Exception as exc:  # noqa: BLE001 - answer the master, keep serving
            with contextlib.suppress(OSError):
                os.close(fd)
            await self._send({"op": "reply", "id": request_id, "ok": False,
                              "error": f"{type(exc).__name__}: {exc}"})
            return
        state = dict(message.get("session") or {})
        user = user_from_dict(state.get("user") or {})
        key = (str(state.get("username") or user.username), conn.remote_ip, protocol)
        self.registry.counted[key] = int(message.get("userip_count", 0))
        await self._send({"op": "reply", "id": request_id, "ok": True})
        try:
            await module.resume_connection(conn, self.ctx, state)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - a protocol bug ends one session only
            log.error(f"{protocol}: session of {key[0]} failed: {type(exc).__name__}: {exc}")
        finally:
            self.registry.counted.pop(key, None)
            await conn.close()

    async def _deliver(self, message: dict[str, Any], fds: list[int]) -> None:
        from maa_server.daemon.privsep.delivery import run_delivery

        reply = await run_delivery(self.ctx, message, fds)
        await self._send(dict(reply, op="reply", id=message.get("id")))

    async def shutdown(self) -> None:
        """SIGTERM from the master: every session says Dovecot's goodbye
        through its own kick(), logs its disconnect and ends."""
        if self.exiting and self.done.is_set():
            return
        self.exiting = True
        for session in list(self.registry.sessions):
            with contextlib.suppress(Exception):
                session.kick()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=SHUTDOWN_GRACE_SECS)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=SHUTDOWN_GRACE_SECS)
        if self._outbox:
            await asyncio.wait(list(self._outbox), timeout=1)
        self.done.set()

    @staticmethod
    async def _close_stores() -> None:
        with contextlib.suppress(Exception):
            from maa_server.storage import factory

            close_all = getattr(factory, "close_all_stores", None)
            if close_all is not None:
                await asyncio.wait_for(close_all(), SHUTDOWN_GRACE_SECS)


def _read_config(stream: Any) -> tuple[Any, tuple[str, ...]]:
    header = stream.read(8)
    size = int.from_bytes(header, "big")
    blob = stream.read(size)
    if len(blob) != size:
        raise SystemExit("mail process: configuration not received")
    return pickle.loads(blob)  # from the master, which we trust (never the other way)


def main(argv: list[str]) -> int:
    fd, level, uid, gid = (int(x) for x in argv[:4])
    groups = [int(x) for x in argv[4].split(",") if x] if len(argv) > 4 else []
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    config, names = _read_config(sys.stdin.buffer)
    preload(names)
    drop_privileges(uid, gid, groups)
    handler = JsonLogHandler()
    logger = logging.getLogger("maa")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    import socket

    channel = Channel(socket.socket(fileno=fd))
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(Worker(channel, config).run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
