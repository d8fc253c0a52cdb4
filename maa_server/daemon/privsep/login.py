"""A login process: pre-login work (TLS, greeting, CAPABILITY, LOGIN /
AUTHENTICATE / USER+PASS) as `default_login_user` (Dovecot: dovenull),
as Dovecot's imap-login / pop3-login / managesieve-login do.

Started by the master as root (`python -m maa_server.daemon.privsep.login
FD LOGLEVEL UID GID GROUPS`; config, listeners and the import list pickled
on stdin), it loads the TLS keys and every module, then drops to the
login user for good. It accepts on the listening sockets it inherited,
asks the master to authenticate (auth/remote.py), and after a login sends
the connection to the master, which passes it to the user's worker (a
TLS connection stays here and is relayed, handover.py). Retired after a
reload, it stops accepting and exits once its connections are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import sys
from typing import Any

from maa_server import logs
from maa_server.auth.remote import RemoteAuthenticator
from maa_server.daemon.master import (
    SHUTDOWN_GRACE_SECS,
    Generation,
    ListenerState,
    Master,
    load_handlers,
    say_pre_login_goodbyes,
)
from maa_server.daemon.privsep.channel import Channel, ChannelClosed, Requests
from maa_server.daemon.privsep.drop import drop_privileges
from maa_server.daemon.privsep.handover import send_connection
from maa_server.daemon.privsep.worker import JsonLogHandler, preload
from maa_server.protocols.context import ServerContext, SessionRegistry
from maa_server.storage.interface import MailboxError

log = logs.get_log("master")


class MirrorRegistry(SessionRegistry):
    """mail_max_userip_connections before a login is handed over: the
    master pushes the counts of every process's sessions."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[tuple[str, str, str], int] = {}

    def count(self, user: str, remote_ip: str, protocol: str) -> int:
        return self.counts.get((user, remote_ip, protocol), 0)


async def _no_mail_here(user: Any) -> Any:
    raise MailboxError("a login process has no mail access")


class LoginMaster(Master):
    """The one-process Master's acceptors, without what only the real
    master does (control socket, LMTP, reloads, sd_notify)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.relaying: set[int] = set()  # id() of connections relayed to a worker
        self.retired = False

    async def start(self) -> None:
        if self.retired:  # replaced before it even started
            return
        for state in self.listeners:
            await self._serve(state)

    async def reload(self) -> tuple[bool, str]:
        return False, "login processes are replaced by the master, not reloaded"

    async def shutdown(self) -> None:
        """SIGTERM: the pre-login goodbyes (`* BYE Shutting down`); logged-in
        TLS sessions hear theirs from the worker through the relay, which
        ends when the worker closes."""
        self.retire()
        say_pre_login_goodbyes(list(self.open.values()), self.relaying)
        if self.open:
            await asyncio.wait([e.task for e in self.open.values()], timeout=SHUTDOWN_GRACE_SECS)
        for entry in list(self.open.values()):
            entry.task.cancel()

    def retire(self) -> None:
        """Stop accepting; the open connections go on."""
        self.retired = True
        for state in self.listeners:
            if state.server is not None:
                state.server.close()


class LoginProcess:
    def __init__(self, channel: Channel, config: Any, tls: Any, local_auth: Any,
                 listeners: list[ListenerState], handlers: dict[str, Any]) -> None:
        self.channel = channel
        self.requests = Requests(channel)
        self.registry = MirrorRegistry()
        ctx = ServerContext(config=config, auth=RemoteAuthenticator(local_auth, self.call),
                            open_store=_no_mail_here, ssl_context=tls.base.default if tls else None,
                            sessions=self.registry, hand_over=self.hand_over)
        generation = Generation(config=config, ctx=ctx, tls=tls, specs=[s.spec for s in listeners])
        self.master = LoginMaster("", generation, listeners, handlers)
        self.retired = False

    async def call(self, message: dict[str, Any]) -> dict[str, Any]:
        return await self.requests.ask(message)

    async def hand_over(self, conn: Any, protocol: str, state: dict[str, Any]) -> str | None:
        error: list[str] = []

        async def send(message: dict[str, Any], fds: list[int]) -> None:
            reply = await self.requests.ask(dict(message, op="session"), fds)
            if not reply.get("ok"):
                error.append(str(reply.get("error") or "mail process failed"))
                raise ChannelClosed(error[-1])

        if conn.secured:
            self.master.relaying.add(id(conn))
        try:
            await send_connection(conn, {"protocol": protocol, "session": state}, send)
        except (ChannelClosed, OSError) as exc:
            return error[-1] if error else f"Internal error: {exc}"
        finally:
            self.master.relaying.discard(id(conn))
        return None

    async def _read(self) -> None:
        try:
            while True:
                message, fds = await self.channel.recv()
                for fd in fds:
                    os.close(fd)
                op = message.get("op")
                if op == "reply":
                    self.requests.answer(message)
                elif op == "count":
                    key = (str(message.get("user")), str(message.get("ip")), str(message.get("protocol")))
                    count = int(message.get("count", 0))
                    if count:
                        self.registry.counts[key] = count
                    else:
                        self.registry.counts.pop(key, None)
                elif op == "retire":
                    self.retire()
                    # The master waits for this before it says READY=1: from
                    # now on only the new login process accepts.
                    await self.channel.send({"op": "retired"})
        except ChannelClosed:
            # The master is gone: nobody can authenticate or take sessions.
            self.master.stopping.set()
        self.requests.fail("master gone")

    def retire(self) -> None:
        if not self.retired:
            self.retired = True
            self.master.retire()
            asyncio.ensure_future(self._exit_when_idle())

    async def _exit_when_idle(self) -> None:
        # A connection accepted just before the listeners closed may not
        # have registered yet: look only after a moment.
        await asyncio.sleep(1)
        while self.master.open:
            await asyncio.sleep(1)
        self.master.stopping.set()

    async def run(self) -> int:
        reader = asyncio.ensure_future(self._read())
        try:
            return await self.master.run()
        finally:
            reader.cancel()


def _read_payload(stream: Any) -> dict[str, Any]:
    size = int.from_bytes(stream.read(8), "big")
    blob = stream.read(size)
    if len(blob) != size:
        raise SystemExit("login process: start-up data not received")
    payload = pickle.loads(blob)  # from the master, which we trust
    if not isinstance(payload, dict):
        raise SystemExit("login process: bad start-up data")
    return payload


def main(argv: list[str]) -> int:
    fd, level, uid, gid = (int(x) for x in argv[:4])
    groups = [int(x) for x in argv[4].split(",") if x] if len(argv) > 4 else []
    payload = _read_payload(sys.stdin.buffer)
    config = payload["config"]
    handler = JsonLogHandler()
    logger = logging.getLogger("maa")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    # As root: the keys (ssl_key = </etc/ssl/private/...) are read now.
    from maa_server.auth import build_authenticator
    from maa_server.daemon.tls import build_tls_config

    specs_fds = payload["listeners"]
    tls = build_tls_config(config, sorted({spec.protocol for spec, _ in specs_fds}))
    local_auth = build_authenticator(config)
    handlers = load_handlers({spec.protocol for spec, _ in specs_fds})
    preload(tuple(payload.get("preload") or ()))
    drop_privileges(uid, gid, groups)
    listeners = []
    for spec, number in specs_fds:
        sock = socket.socket(fileno=number)
        sock.setblocking(False)
        listeners.append(ListenerState(spec, sock))
    channel = Channel(socket.socket(fileno=fd))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        process = LoginProcess(channel, config, tls, local_auth, listeners, handlers)
        with contextlib.suppress(KeyboardInterrupt):
            runner.run(process.run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
