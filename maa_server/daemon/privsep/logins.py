"""The master's side of the login processes (login.py): started with the
listening sockets and the current configuration, running as
`default_login_user`; replaced on reload (the old one stops accepting and
ends with its last connection); restarted if it dies. Requests from a
login process: authentication (auth/remote.AuthService) and logged-in
connections, which go on to the user's worker (pool.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import pwd
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from maa_server import logs
from maa_server.auth.remote import AuthService, user_from_dict
from maa_server.daemon.privsep.channel import Channel, ChannelClosed, channel_pair
from maa_server.daemon.privsep.pool import (
    WorkerPool,
    WorkerRefused,
    child_env,
    exit_description,
    relay_child_logs,
    stop_children,
    write_payload,
)
from maa_server.protocols.context import SessionRegistry

log = logs.get_log("master")
RESPAWN_DELAY_SECS = 1.0
RETIRE_TIMEOUT_SECS = 5.0


class LoginUserMissing(Exception):
    """default_login_user does not exist; str() is Dovecot's fatal text."""


def login_credentials(config: Any) -> tuple[int, int]:
    """uid/gid of default_login_user (Dovecot: dovenull). Dovecot refuses
    to start without it (observed: `default_login_user doesn't exist`)."""
    name = str(config.get("default_login_user") or "dovenull")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise LoginUserMissing(f"Error in configuration file {getattr(config, 'path', '')}: "
                               f"default_login_user doesn't exist: {name}") from None
    return entry.pw_uid, entry.pw_gid


@dataclass(eq=False)
class LoginProcess:
    proc: subprocess.Popen[bytes]
    channel: Channel
    auth: AuthService
    protocols: str
    retired: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    retired_ack: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def pid(self) -> int:
        return self.proc.pid


class LoginProcesses:
    def __init__(self, pool: WorkerPool, registry: SessionRegistry) -> None:
        self.pool = pool
        self.registry = registry
        self.current: LoginProcess | None = None
        self.all: set[LoginProcess] = set()
        self.stopping = False
        self._spawn_args: tuple[Any, Any, list[Any]] | None = None
        pool.on_change = self.broadcast_count

    async def start(self, config: Any, auth: Any, listeners: list[Any]) -> None:
        """A login process for these listeners (socket, spec); the one
        serving before stops accepting."""
        self._spawn_args = (config, auth, listeners)
        old = self.current
        self.current = await self._spawn(config, auth, listeners)
        if old is not None:
            await self.retire(old)

    async def retire(self, login: LoginProcess) -> None:
        """Stop it accepting, and wait until it has (or is gone)."""
        login.retired = True
        with contextlib.suppress(ChannelClosed, OSError, asyncio.TimeoutError):
            await login.channel.send({"op": "retire"})
            await asyncio.wait_for(asyncio.shield(login.retired_ack), RETIRE_TIMEOUT_SECS)

    async def _spawn(self, config: Any, auth: Any, listeners: list[Any]) -> LoginProcess:
        uid, gid = login_credentials(config)
        from maa_server.daemon.privsep.worker import preload_names

        names = await asyncio.to_thread(preload_names)
        ours, theirs = channel_pair()
        fds = [theirs.fileno(), *(sock.fileno() for sock, _ in listeners)]
        payload = pickle.dumps({"config": config, "preload": names,
                                "listeners": [(spec, sock.fileno()) for sock, spec in listeners]})
        level = logging.getLogger("maa").getEffectiveLevel()
        try:
            proc = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-m", "maa_server.daemon.privsep.login", str(theirs.fileno()), str(level),
                 str(uid), str(gid), str(gid)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                pass_fds=fds, start_new_session=True, cwd="/", env=child_env())
        finally:
            theirs.close()
        assert proc.stdin is not None and proc.stderr is not None
        await asyncio.to_thread(write_payload, proc.stdin, payload)
        protocols = ",".join(sorted({spec.protocol for _, spec in listeners}))
        login = LoginProcess(proc, Channel(ours), AuthService(auth), protocols)
        login.tasks.append(asyncio.ensure_future(self._serve(login)))
        login.tasks.append(asyncio.ensure_future(relay_child_logs(proc.stderr, f"login process {proc.pid}")))
        self.all.add(login)
        for key, count in self._counts().items():
            await login.channel.send({"op": "count", "user": key[0], "ip": key[1], "protocol": key[2],
                                      "count": count})
        return login

    # --- requests from a login process -----------------------------------

    async def _serve(self, login: LoginProcess) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                message, fds = await login.channel.recv()
                if message.get("op") == "retired":
                    if not login.retired_ack.done():
                        login.retired_ack.set_result(None)
                    continue
                task = asyncio.ensure_future(self._answer(login, message, fds))
                running.add(task)
                task.add_done_callback(running.discard)
        except ChannelClosed:
            pass
        if not login.retired_ack.done():
            login.retired_ack.set_result(None)
        for task in running:
            task.cancel()
        await self._reap(login)

    async def _answer(self, login: LoginProcess, message: dict[str, Any], fds: list[int]) -> None:
        try:
            if message.get("op") == "session":
                reply = await self._session(message, fds)
            else:
                for fd in fds:
                    os.close(fd)
                fds = []
                reply = await login.auth.handle(message)
        except Exception as exc:  # noqa: BLE001 - answer, whatever failed
            log.error(f"login process {login.pid}: {message.get('op')}: {type(exc).__name__}: {exc}")
            reply = {"ok": False, "error": "Internal error"}
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        with contextlib.suppress(ChannelClosed, OSError):
            await login.channel.send(dict(reply, op="reply", id=message.get("id")))

    async def _session(self, message: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        """A logged-in connection: on to the user's worker."""
        state = dict(message.get("session") or {})
        user = user_from_dict(state.get("user") or {})
        username = str(state.get("username") or user.username)
        if len(fds) != 1:
            return {"ok": False, "error": "session without its socket"}
        try:
            worker = await self.pool.worker_for(user)
        except WorkerRefused as exc:
            return {"ok": False, "error": str(exc)}
        facts = dict(message.get("connection") or {})
        count = self.registry.count(username, str(facts.get("remote_ip", "")), str(message.get("protocol")))
        try:
            reply = await worker.requests.ask(dict(message, op="session", userip_count=count), fds)
        except ChannelClosed:
            return {"ok": False, "error": "Internal error: the mail process exited"}
        return {"ok": bool(reply.get("ok")), "error": reply.get("error")}

    # --- counts for mail_max_userip_connections ---------------------------

    def _counts(self) -> dict[tuple[str, str, str], int]:
        counts: dict[tuple[str, str, str], int] = {}
        for s in list(self.registry.sessions):
            key = (s.user, s.remote_ip, s.protocol)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def broadcast_count(self, user: str, ip: str, protocol: str) -> None:
        count = self.registry.count(user, ip, protocol)
        message = {"op": "count", "user": user, "ip": ip, "protocol": protocol, "count": count}
        for login in list(self.all):
            asyncio.ensure_future(self._send_quietly(login, message))

    @staticmethod
    async def _send_quietly(login: LoginProcess, message: dict[str, Any]) -> None:
        with contextlib.suppress(ChannelClosed, OSError):
            await login.channel.send(message)

    # --- ends --------------------------------------------------------------

    async def _reap(self, login: LoginProcess) -> None:
        login.channel.close()
        code = await asyncio.to_thread(login.proc.wait)
        self.all.discard(login)
        clean = code == 0 or (code == -signal.SIGTERM and self.stopping)
        if not clean:
            log.error(f"service({login.protocols}-login): child {login.pid} {exit_description(code)}")
        if login is self.current and not self.stopping:
            # Nobody accepts on the listeners now: start another one.
            self.current = None
            await asyncio.sleep(RESPAWN_DELAY_SECS)
            if self._spawn_args is not None and not self.stopping:
                try:
                    self.current = await self._spawn(*self._spawn_args)
                except Exception as exc:  # noqa: BLE001 - logged; the master keeps running
                    log.error(f"can't start a login process: {type(exc).__name__}: {exc}")

    async def stop_accepting(self) -> None:
        self.stopping = True
        for login in list(self.all):
            await self.retire(login)

    async def shutdown(self, timeout: float) -> None:
        """SIGTERM to every login process (pre-login goodbyes), then wait."""
        self.stopping = True
        await stop_children(self.all, timeout)
