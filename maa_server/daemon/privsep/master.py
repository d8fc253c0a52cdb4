"""The master with privilege separation (started as root): it binds the
listeners, reads the keys and the passdbs, and serves nobody itself.
Pre-login work runs in a login process as default_login_user (logins.py,
login.py), each user's mail in a worker running as that user (pool.py,
worker.py); LMTP recipients are delivered by the user's worker.
`maa-adm who/kick` and the per-user limits see the sessions of every
worker, SIGHUP replaces the login process (new TLS contexts, old
connections untouched), SIGTERM reaches every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

from maa_server import logs
from maa_server.daemon.master import (
    SHUTDOWN_GRACE_SECS,
    Generation,
    ListenerState,
    Master,
)
from maa_server.daemon.privsep.channel import ChannelClosed
from maa_server.daemon.privsep.handover import send_connection, user_from_dict
from maa_server.daemon.privsep.logins import LoginProcesses, LoginUserMissing
from maa_server.daemon.privsep.pool import WorkerPool, WorkerRefused
from maa_server.protocols.connection import Connection

log = logs.get_log("master")


class HeldListener:
    """Stands where Master keeps an asyncio.Server: the socket is open here
    (so reloads can pass it on) and accepted on in the login process."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def close(self) -> None:
        self.sock.close()

    async def wait_closed(self) -> None:
        return None


class PrivsepMaster(Master):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool = WorkerPool(self.registry)
        self.pool.set_config(self.gen.config)
        self.relays: set[asyncio.Task[Any]] = set()
        self.logins = LoginProcesses(self.pool, self.registry)
        self._install(self.gen)

    async def _serve(self, state: ListenerState) -> None:
        """LMTP is served here (as root; each recipient's copy is saved by
        the user's worker); the other listeners only held for the login
        process, which accepts on them."""
        if state.spec.protocol == "lmtp":
            await super()._serve(state)
        elif state.sock is not None:
            state.server = HeldListener(state.sock)

    async def start(self) -> None:
        await super().start()
        await self._start_logins(self.gen)

    async def _start_logins(self, gen: Generation) -> None:
        held = [(s.sock, s.spec) for s in self.listeners
                if isinstance(s.server, HeldListener) and s.sock is not None]
        if not held:
            return
        try:
            await self.logins.start(gen.config, gen.ctx.auth, held)
        except (LoginUserMissing, OSError) as exc:
            log.error(f"can't start a login process: {exc}")

    def _install(self, gen: Generation) -> None:
        gen.ctx.hand_over = self.hand_over
        self._install_delivery(gen.ctx)

    def _install_delivery(self, ctx: Any) -> None:
        """LMTP recipients are delivered by the user's worker (delivery.py)."""
        from maa_server.daemon.privsep.delivery import install

        install(ctx, self.pool)

    async def _start_lmtp(self, state: Any) -> None:
        await super()._start_lmtp(state)
        if self.lmtp_ctx is not None:
            self._install_delivery(self.lmtp_ctx)

    async def _switch_to(self, new: Generation) -> None:
        await super()._switch_to(new)
        await self._start_logins(new)
        self.pool.set_config(new.config)
        self._install(new)
        if self.lmtp_ctx is not None:
            self._install_delivery(self.lmtp_ctx)

    # --- hand-over -------------------------------------------------------

    async def hand_over(self, conn: Connection, protocol: str, state: dict[str, Any]) -> str | None:
        """ServerContext.hand_over: move a logged-in connection to the user's
        worker. Returns None when it left this process (for TLS: when the
        relay ends), else the error line for the log."""
        user = user_from_dict(state.get("user") or {})
        username = str(state.get("username") or user.username)
        try:
            worker = await self.pool.worker_for(user)
        except WorkerRefused as exc:
            return str(exc)
        count = self.registry.count(username, conn.remote_ip, protocol)

        async def send(message: dict[str, Any], fds: list[int]) -> None:
            reply = await worker.request(dict(message, op="session"), fds)
            if not reply.get("ok"):
                raise WorkerRefused(str(reply.get("error") or "mail process failed"))

        task = asyncio.current_task()
        if task is not None and conn.secured:
            self.relays.add(task)
        try:
            await send_connection(conn, {"protocol": protocol, "session": state, "userip_count": count}, send)
        except (WorkerRefused, ChannelClosed, OSError) as exc:
            log.error(f"{protocol}({username}): hand-over to mail process {worker.pid} failed: {exc}")
            return "Internal error: the mail process did not take the session"
        finally:
            if task is not None:
                self.relays.discard(task)
        return None

    # --- control ---------------------------------------------------------

    async def _control_request(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("command") == "who":
            # The pid is the mail process's, as doveadm who shows it.
            rows = [{"user": s.user, "protocol": s.protocol, "ip": s.remote_ip,
                     "session": s.session_id, "pid": getattr(s, "pid", os.getpid())}
                    for s in list(self.registry.sessions)]
            return {"ok": True, "sessions": rows}
        return await super()._control_request(request)

    # --- stopping ----------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop accepting, let every worker say goodbye to its sessions and
        exit, then the one-process shutdown for what is still pre-login."""
        self.pool.stopping = True
        await self.logins.stop_accepting()
        for state in self.listeners:
            if state.server is not None:
                state.server.close()
        # Workers first: their goodbyes reach TLS clients through the login
        # process's relays; then the login processes end what is pre-login.
        await self.pool.shutdown(SHUTDOWN_GRACE_SECS + 2)
        await self.logins.shutdown(SHUTDOWN_GRACE_SECS + 2)
        if self.relays:
            # TLS relays end once their worker closed its side.
            await asyncio.wait(list(self.relays), timeout=2)
        for task in list(self.relays):
            task.cancel()
        with contextlib.suppress(Exception):
            await super().shutdown()
