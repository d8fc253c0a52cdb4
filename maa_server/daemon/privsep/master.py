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
from maa_server.daemon.privsep.logins import LoginProcesses, LoginUserMissing
from maa_server.daemon.privsep.pool import WorkerPool

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
        self.logins = LoginProcesses(self.pool, self.registry)
        self._install(self.gen)

    async def _serve(self, state: ListenerState) -> None:
        """LMTP is served here (as root; each recipient's copy is saved by
        the user's worker); the other listeners only held for the login
        process, which accepts on them."""
        if state.spec.protocol == "lmtp":
            await super()._serve(state)
        elif state.sock is not None and not isinstance(state.server, HeldListener):
            state.server = HeldListener(state.sock)

    async def start(self) -> None:
        # The login process first, so that READY=1 means "accepting".
        for state in self.listeners:
            if state.spec.protocol != "lmtp":
                await self._serve(state)
        await self._start_logins(self.gen)
        await super().start()

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
        with contextlib.suppress(Exception):
            await super().shutdown()
