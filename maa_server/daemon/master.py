"""The master process: configuration, listeners, TLS, signals, shutdown
(DESIGN "Processes"; Dovecot: src/master/main.c).

A *generation* is everything built from one reading of the configuration
(config, authenticator, TLS contexts, ServerContext). A connection is served
by the generation current when it was accepted; SIGHUP builds a new one and
swaps it in only if it built without error, so a broken file never stops a
running server and open sessions are not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from maa_server import __version__, logs
from maa_server.daemon import proxy_protocol
from maa_server.daemon.control import control_path, start_control_server
from maa_server.daemon.limits import PreLogin
from maa_server.daemon.listeners import ListenError, ListenerSpec, bind, listener_specs
from maa_server.daemon.notify import sd_notify
from maa_server.daemon.proxy_protocol import ProxiedAddresses, is_trusted
from maa_server.daemon.tls import (
    TlsConfig,
    TlsConfigError,
    TlsContexts,
    build_tls_config,
)
from maa_server.protocols.connection import Connection
from maa_server.protocols.context import LiveSession, ServerContext, SessionRegistry

log = logs.get_log("master")

# protocol -> module providing `async handle_connection(conn, ctx)`
STREAM_HANDLERS = {
    "imap": "maa_server.protocols.imap.session",
    "pop3": "maa_server.protocols.pop3.session",
    "sieve": "maa_server.protocols.managesieve.session",
}
LMTP_MODULE = "maa_server.protocols.lmtp.server"
# After SIGTERM, how long cancelled sessions get to log their disconnect
# and close (Dovecot's master waits for its children similarly).
SHUTDOWN_GRACE_SECS = 3.0
# What Dovecot 2.3 sends on `doveadm stop` / SIGTERM (observed): logged-in
# and pre-auth connections hear different words.
SHUTDOWN_GOODBYES: dict[tuple[str, bool], bytes] = {
    ("imap", True): b"* BYE Server shutting down.\r\n",
    ("imap", False): b"* BYE Shutting down\r\n",
    ("pop3", True): b"-ERR [SYS/TEMP] Server shutting down.\r\n",
    ("pop3", False): b"-ERR Shutting down\r\n",
}
STATUS_INTERVAL_SECS = 30.0


def say_pre_login_goodbyes(entries: Iterable[OpenConnection], skip: set[int]) -> None:
    """On SIGTERM, what Dovecot tells connections not logged in
    (SHUTDOWN_GOODBYES), then close them. `skip`: id() of the connections
    that hear their goodbye elsewhere (logged-in sessions, relays)."""
    for entry in entries:
        if entry.task.done() or id(entry.conn) in skip:
            continue
        goodbye = SHUTDOWN_GOODBYES.get((entry.protocol, False))
        if goodbye and not entry.conn.closing:
            with contextlib.suppress(Exception):
                entry.conn.write(goodbye)
        entry.conn.close_soon()


def _session_connection(session: LiveSession) -> Connection | None:
    """The Connection of a logged-in session: LiveSession.connection, or
    for sessions that do not fill it in, the object behind their kick
    callback (IMAP: the session's `.conn`; POP3: Connection.abort)."""
    if isinstance(session.connection, Connection):
        return session.connection
    owner = getattr(session.kick, "__self__", None)
    if isinstance(owner, Connection):
        return owner
    conn = getattr(owner, "conn", None)
    return conn if isinstance(conn, Connection) else None


def _log_loop_exception(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Errors nobody awaited go to the mail log, not to a stderr that a
    daemon no longer has."""
    exc = context.get("exception")
    if isinstance(exc, asyncio.CancelledError):
        return  # a connection ended by the shutdown, not an error
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else ""
    log.error(f"{context.get('message', 'unhandled error')} {detail}".strip())


class StartupError(Exception):
    """Anything that stops the daemon from starting; str() is one line."""


ConnectionHandler = Callable[[Connection, ServerContext], Awaitable[None]]


@dataclass
class Generation:
    config: Any
    ctx: ServerContext
    tls: TlsConfig | None
    specs: list[ListenerSpec]


@dataclass
class ListenerState:
    spec: ListenerSpec
    sock: socket.socket | None
    server: Any = None  # asyncio.Server or the LMTP server
    current: int = 0
    total: int = 0


@dataclass
class OpenConnection:
    protocol: str
    conn: Connection
    task: asyncio.Task[Any]
    service: str = ""  # the login service that accepted it (limits)


def load_generation(config_path: str, registry: SessionRegistry) -> Generation:
    """Read the config and build auth, TLS and the context. Raises StartupError."""
    try:
        from maa_server.config import ConfigError, load_config
    except ImportError as exc:  # pragma: no cover - the config package is part of the install
        raise StartupError(f"configuration reader unavailable: {exc}") from exc
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise StartupError(str(exc)) from exc
    except OSError as exc:
        raise StartupError(f"Can't read configuration {config_path}: {exc.strerror}") from exc
    return build_generation(cfg, registry)


def build_generation(cfg: Any, registry: SessionRegistry) -> Generation:
    from maa_server.auth import build_authenticator

    try:
        tls = build_tls_config(cfg, str(cfg.get("protocols") or "").split())
    except TlsConfigError as exc:
        raise StartupError(str(exc)) from exc
    try:
        auth = build_authenticator(cfg)
    except Exception as exc:  # the auth layer reports bad passdb/userdb settings
        raise StartupError(f"auth: {exc}") from exc

    async def open_store(user: Any) -> Any:
        # Imported on first use: the daemon, TLS and logins do not need it.
        from maa_server.storage.factory import open_mail_store

        return await open_mail_store(cfg, user)

    try:
        specs = listener_specs(cfg)
    except ListenError as exc:
        raise StartupError(str(exc)) from exc
    ctx = ServerContext(config=cfg, auth=auth, open_store=open_store,
                        ssl_context=tls.base.default if tls else None, sessions=registry)
    return Generation(config=cfg, ctx=ctx, tls=tls, specs=specs)


def bind_all(specs: list[ListenerSpec]) -> list[ListenerState]:
    """Bind every listener now (before forking); one failure closes the rest."""
    states: list[ListenerState] = []
    try:
        for spec in specs:
            sock = bind(spec)
            if sock is not None:
                states.append(ListenerState(spec, sock))
    except ListenError as exc:
        for state in states:
            if state.sock is not None:
                state.sock.close()
        raise StartupError(str(exc)) from exc
    return states


def load_handlers(protocols: set[str]) -> dict[str, ConnectionHandler]:
    """Import protocol modules lazily: a protocol that fails to import is
    logged and left out, the others still serve."""
    handlers: dict[str, ConnectionHandler] = {}
    for protocol in sorted(protocols):
        if protocol == "lmtp":
            continue
        module_name = STREAM_HANDLERS.get(protocol)
        if module_name is None:
            log.error(f"protocol {protocol} is not supported; its listeners are not started")
            continue
        try:
            module = importlib.import_module(module_name)
            handlers[protocol] = module.handle_connection
        except Exception as exc:
            log.error(f"protocol {protocol} unavailable ({type(exc).__name__}: {exc}); "
                      "its listeners are not started")
    return handlers


def usable_specs(specs: list[ListenerSpec], handlers: dict[str, ConnectionHandler],
                 tls: TlsConfig | None) -> list[ListenerSpec]:
    """The listeners that can serve, checked before binding (a port we would
    not serve must not make the start fail); logs why the others are left out."""
    kept: list[ListenerSpec] = []
    lmtp_ok: bool | None = None
    for spec in specs:
        reason = ""
        if spec.haproxy and spec.ssl:
            # The PROXY header comes before the TLS handshake, which asyncio
            # starts at once on an implicit-TLS listener.
            reason = "haproxy = yes with ssl = yes is not supported yet"
        elif spec.haproxy and spec.protocol == "lmtp":
            reason = "haproxy = yes is not supported for lmtp yet"
        elif spec.ssl and (tls is None or tls.for_protocol(spec.protocol) is None):
            # Dovecot accepts and then drops these with "SSL is disabled
            # (ssl=no)"; not listening at all is clearer.
            reason = "SSL is disabled (ssl=no)"
        elif spec.protocol == "lmtp":
            if lmtp_ok is None:
                try:
                    lmtp_ok = callable(importlib.import_module(LMTP_MODULE).start_lmtp)
                except Exception as exc:
                    log.error(f"protocol lmtp unavailable ({type(exc).__name__}: {exc}); "
                              "its listeners are not started")
                    lmtp_ok = False
            if not lmtp_ok:
                continue
        elif spec.protocol not in handlers:
            continue  # load_handlers logged it
        if reason:
            log.error(f"service({spec.service}): {spec.name}: {reason}, listener not started")
            continue
        kept.append(spec)
    return kept


class Master:
    def __init__(self, config_path: str, generation: Generation, listeners: list[ListenerState],
                 handlers: dict[str, ConnectionHandler]) -> None:
        self.config_path = config_path
        self.gen = generation
        self.registry = generation.ctx.sessions
        self.listeners = listeners
        self.tls = TlsContexts(generation.tls) if generation.tls else None
        self.handlers = handlers
        self.open: dict[asyncio.Task[Any], OpenConnection] = {}
        self.stopping = asyncio.Event()
        self.control: asyncio.AbstractServer | None = None
        self.control_path = ""
        self.lmtp_ctx: ServerContext | None = None
        self._reloading = False
        self.started = time.monotonic()
        self.prelogin = PreLogin()  # login services' limits (daemon/limits.py)
        self._watch_logins()

    # --- start ---------------------------------------------------------

    async def start(self) -> None:
        for state in self.listeners:
            await self._serve(state)
        self.listeners = [s for s in self.listeners if s.server is not None]
        base_dir = str(self.gen.config.get("base_dir") or "/run/dovecot")
        self.control_path = control_path(base_dir)
        try:
            self.control = await start_control_server(self.control_path, self._control_request)
        except OSError as exc:
            log.error(f"control socket {self.control_path}: {exc.strerror}; maa-adm reload/stop/who/kick "
                      "will not work")
        protocols = ", ".join(sorted({s.spec.protocol for s in self.listeners})) or "nothing"
        log.info(f"maa-server v{__version__} starting up for {protocols}")
        if self.gen.config.get("shutdown_clients") is False:
            # Dovecot's mail processes outlive their master; ours end with it.
            log.warning("shutdown_clients = no is not supported: sessions end when maa-server stops")
        sd_notify("READY=1", f"STATUS={self._status()}", f"MAINPID={os.getpid()}")

    async def _serve(self, state: ListenerState) -> None:
        spec = state.spec
        if spec.protocol == "lmtp":
            await self._start_lmtp(state)
            return
        state.server = await asyncio.start_server(
            self._acceptor(state, self.handlers[spec.protocol]), sock=state.sock,
            ssl=self.tls.front(spec.protocol) if (spec.ssl and self.tls) else None,
            ssl_handshake_timeout=30 if spec.ssl else None)

    async def _apply_listener_changes(self, specs: list[ListenerSpec]) -> None:
        """Reload: close listeners that are gone, open new ones (Dovecot's
        master does the same on SIGHUP). A new one that cannot be bound is
        logged; everything else keeps serving."""
        wanted = set(specs)
        for state in [s for s in self.listeners if s.spec not in wanted]:
            if state.server is not None:
                state.server.close()
            if state.spec.path and os.path.exists(state.spec.path):
                os.unlink(state.spec.path)
            self.listeners.remove(state)
            log.info(f"stopped listening on {state.spec.label}")
        running = {s.spec for s in self.listeners}
        added = [spec for spec in specs if spec not in running]
        if not added:
            return
        self.handlers.update(load_handlers({spec.protocol for spec in added} - set(self.handlers)))
        for spec in usable_specs(added, self.handlers, self.gen.tls):
            try:
                sock = bind(spec)
            except ListenError as exc:
                log.error(str(exc))
                continue
            if sock is None:
                continue
            state = ListenerState(spec, sock)
            await self._serve(state)
            if state.server is not None:
                self.listeners.append(state)
                log.info(f"listening on {state.spec.label}")

    async def _start_lmtp(self, state: ListenerState) -> None:
        spec = state.spec
        try:
            module = importlib.import_module(LMTP_MODULE)
            start_lmtp = module.start_lmtp
        except Exception as exc:
            log.error(f"protocol lmtp unavailable ({type(exc).__name__}: {exc}); listener not started")
            self._close_sock(state)
            return
        # start_lmtp binds by itself; we bound first only to report conflicts
        # before forking. The LMTP context is updated in place on reload
        # (deliveries are short; there are no sessions to keep).
        self._close_sock(state)
        if self.lmtp_ctx is None:
            self.lmtp_ctx = self._copy_ctx(self.gen.ctx)
        try:
            if spec.path:
                state.server = await start_lmtp(self.lmtp_ctx, path=spec.path, mode=spec.mode,
                                                  uid=spec.uid, gid=spec.gid)
            else:
                state.server = await start_lmtp(self.lmtp_ctx, host=spec.address, port=spec.port)
        except Exception as exc:
            log.error(f"service(lmtp): {spec.label}: {exc}")

    @staticmethod
    def _copy_ctx(ctx: ServerContext) -> ServerContext:
        return ServerContext(config=ctx.config, auth=ctx.auth, open_store=ctx.open_store,
                             ssl_context=ctx.ssl_context, sessions=ctx.sessions)

    @staticmethod
    def _close_sock(state: ListenerState) -> None:
        if state.sock is not None:
            state.sock.close()
            state.sock = None

    # --- connections ---------------------------------------------------

    def _acceptor(self, state: ListenerState, handler: ConnectionHandler
                  ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.stopping.is_set():
                writer.close()
                return
            gen = self.gen  # the generation current at accept time serves it
            proxied = None
            if state.spec.haproxy:
                ok, proxied = await self._read_proxy_header(state.spec, gen, reader, writer)
                if not ok:
                    writer.close()
                    return
            front = self.tls.front(state.spec.protocol) if (self.tls and gen.tls) else None
            conn = Connection(reader, writer, server_ssl=front)
            if proxied is not None:
                conn.remote_ip, conn.remote_port = proxied.client_ip, proxied.client_port
                conn.local_ip, conn.local_port = proxied.server_ip, proxied.server_port
            task = asyncio.current_task()
            assert task is not None
            self.prelogin.make_room(gen.config, state.spec.service)
            entry = OpenConnection(state.spec.protocol, conn, task, state.spec.service)
            self.open[task] = entry
            self.prelogin.add(entry)
            state.current += 1
            state.total += 1
            try:
                await handler(conn, gen.ctx)
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # a protocol bug must not take the server down
                log.error(f"{state.spec.protocol}: connection from {conn.remote_ip} failed: "
                          f"{type(exc).__name__}: {exc}")
            finally:
                state.current -= 1
                self.open.pop(task, None)
                self.prelogin.discard(entry)
                await conn.close()
        return accepted

    def _watch_logins(self) -> None:
        """A session registering itself (it logged in) leaves the pre-login
        set of its service: registry.add is wrapped, as the registry is the
        protocols' one signal of a login."""
        registry = self.registry
        add = registry.add

        def add_and_leave_waiting(session: LiveSession) -> None:
            add(session)
            conn = _session_connection(session)
            if conn is not None:
                self.prelogin.logged_in(conn)

        registry.add = add_and_leave_waiting  # type: ignore[method-assign]

    async def _read_proxy_header(self, spec: ListenerSpec, gen: Generation, reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> tuple[bool, ProxiedAddresses | None]:
        """haproxy = yes: the PROXY header first, from a trusted peer only
        (haproxy_trusted_networks, haproxy_timeout)."""
        peer = writer.get_extra_info("peername")
        peer_ip = str(peer[0]) if isinstance(peer, tuple) else ""
        login_log = logs.get_log(spec.service)
        if not is_trusted(peer_ip, str(gen.config.get("haproxy_trusted_networks") or "")):
            login_log.error(f"haproxy: Client not trusted (rip={peer_ip})")
            return False, None
        timeout = float(gen.config.get("haproxy_timeout") or 3)
        try:
            async with asyncio.timeout(timeout):
                prefix = await reader.readexactly(proxy_protocol.PREFIX_LEN)
                if proxy_protocol.version_of(prefix) == 1:
                    line = prefix + await reader.readuntil(b"\n")
                    return True, proxy_protocol.parse_v1(line)
                header = prefix + await reader.readexactly(proxy_protocol.V2_HEADER_LEN - len(prefix))
                body = await reader.readexactly(proxy_protocol.v2_body_length(header))
                return True, proxy_protocol.parse_v2(header, body)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                proxy_protocol.ProxyHeaderError, ConnectionError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
            login_log.error(f"haproxy: Client disconnected: Failed to read valid HAproxy header "
                            f"({why}) (rip={peer_ip})")
            return False, None

    # --- reload --------------------------------------------------------

    async def reload(self) -> tuple[bool, str]:
        """SIGHUP / maa-adm reload: a new generation for new connections."""
        if self._reloading:
            return False, "a reload is already running"
        self._reloading = True
        sd_notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}",
                  "STATUS=Reloading configuration")
        log.warning("SIGHUP received - reloading configuration")
        try:
            try:
                new = await asyncio.to_thread(load_generation, self.config_path, self.registry)
            except Exception as exc:
                text = str(exc) if isinstance(exc, StartupError) else f"{type(exc).__name__}: {exc}"
                log.error(f"Reload failed, keeping the running configuration: {text}")
                return False, text
            await self._switch_to(new)
            return True, ""
        finally:
            self._reloading = False
            # READY=1 only once the new generation (or the old one) serves.
            sd_notify("READY=1", f"STATUS={self._status()}")

    async def _switch_to(self, new: Generation) -> None:
        if new.tls is None and self.tls is not None:
            log.warning("ssl = no: implicit TLS listeners keep their old certificate until the next "
                        "restart; STARTTLS is off for new connections")
        if new.tls is not None:
            if self.tls is None:
                self.tls = TlsContexts(new.tls)
            else:
                self.tls.swap(new.tls)
        self.gen = new
        await self._apply_listener_changes(new.specs)
        if self.lmtp_ctx is not None:
            self.lmtp_ctx.config, self.lmtp_ctx.auth = new.ctx.config, new.ctx.auth
            self.lmtp_ctx.open_store, self.lmtp_ctx.ssl_context = new.ctx.open_store, new.ctx.ssl_context
        try:
            logs.configure_logging(new.config)
        except OSError as exc:
            log.error(f"can't open log file {exc.filename}: {exc.strerror}; logging as before")
        for warning in getattr(new.config, "warnings", []):
            log.warning(warning)

    def reopen_logs(self) -> None:
        """SIGUSR1 (logrotate). Silent, as Dovecot's master is."""
        logs.reopen_logs()

    # --- control -------------------------------------------------------

    async def _control_request(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        if command == "who":
            rows = [{"user": s.user, "protocol": s.protocol, "ip": s.remote_ip,
                     "session": s.session_id, "pid": os.getpid()}
                    for s in list(self.registry.sessions)]
            return {"ok": True, "sessions": rows}
        if command == "kick":
            # By session id (maa-adm matched user and IP masks on `who`'s
            # rows), or every session of the named users.
            ids = {str(i) for i in request.get("sessions", [])}
            users = {str(u) for u in request.get("users", [])}
            kicked: dict[str, int] = {}
            for session in list(self.registry.sessions):
                if session.session_id in ids or session.user in users:
                    session.kick()
                    kicked[session.user] = kicked.get(session.user, 0) + 1
            return {"ok": True, "kicked": kicked}
        if command == "reload":
            ok, error = await self.reload()
            return {"ok": ok, "error": error}
        if command == "stop":
            asyncio.get_running_loop().call_soon(self.stopping.set)
            return {"ok": True}
        if command == "status":
            return {"ok": True, "pid": os.getpid(), "version": __version__,
                    "listeners": [{"listener": s.spec.label, "connections": s.current, "total": s.total}
                                  for s in self.listeners]}
        return {"ok": False, "error": f"unknown command {command!r}"}

    def _status(self) -> str:
        open_count = sum(s.current for s in self.listeners)
        return f"{len(self.listeners)} listeners, {open_count} connections, {len(self.registry.sessions)} sessions"

    # --- run and stop --------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        loop.add_signal_handler(signal.SIGUSR1, self.reopen_logs)
        loop.set_exception_handler(_log_loop_exception)
        await self.start()
        status = asyncio.ensure_future(self._report_status())
        await self.stopping.wait()
        status.cancel()
        await self.shutdown()
        return 0

    async def _report_status(self) -> None:
        """Keep `systemctl status` current (STATUS= line)."""
        last = ""
        while True:
            await asyncio.sleep(STATUS_INTERVAL_SECS)
            now = self._status()
            if now != last:
                sd_notify(f"STATUS={now}")
                last = now

    async def shutdown(self) -> None:
        """SIGTERM / maa-adm stop: stop accepting, say Dovecot's goodbye on
        every connection, let the sessions end and log, close the mail
        stores. One process: `shutdown_clients = no` cannot keep sessions
        alive (Dovecot's default, `yes`, is what happens)."""
        sd_notify("STOPPING=1", "STATUS=Shutting down")
        log.warning("Master process shutting down")
        if self.control is not None:
            self.control.close()
        for state in self.listeners:
            if state.server is not None:
                state.server.close()
        if self.control_path and os.path.exists(self.control_path):
            os.unlink(self.control_path)
        # Logged-in sessions end through their own kick(): `* BYE Server
        # shutting down.` / `-ERR [SYS/TEMP] Server shutting down.`, close,
        # and the session logs `Disconnected: Server shutting down.` as
        # Dovecot's mail processes do on SIGTERM. A command in flight runs to
        # its end (its storage work is not cut off; only its reply is lost).
        told: set[int] = set()
        for session in list(self.registry.sessions):
            conn = _session_connection(session)
            try:
                session.kick()
            except Exception as exc:  # a protocol bug must not stop the shutdown
                log.error(f"{session.protocol}({session.user}): kick failed: {type(exc).__name__}: {exc}")
                continue
            if conn is not None:
                told.add(id(conn))
        say_pre_login_goodbyes(list(self.open.values()), told)
        if self.open:
            await asyncio.wait(list(self.open), timeout=SHUTDOWN_GRACE_SECS)
        stragglers = [entry.task for entry in self.open.values() if not entry.task.done()]
        for task in stragglers:
            task.cancel()
        if stragglers:
            await asyncio.wait(stragglers, timeout=SHUTDOWN_GRACE_SECS)
        await self._close_stores()
        for state in self.listeners:
            if state.server is not None:
                try:
                    await asyncio.wait_for(state.server.wait_closed(), 2)
                except (TimeoutError, Exception):
                    pass
                if state.spec.path and os.path.exists(state.spec.path):
                    os.unlink(state.spec.path)

    @staticmethod
    async def _close_stores() -> None:
        """Flush what the mail stores keep in memory (index caches) so that
        nothing is left half written (storage.factory.close_all_stores)."""
        try:
            from maa_server.storage.factory import close_all_stores

            await asyncio.wait_for(close_all_stores(), SHUTDOWN_GRACE_SECS)
        except Exception as exc:
            log.error(f"closing mail stores failed: {type(exc).__name__}: {exc}")
