"""The master's side of the mail workers: one worker process per (uid, gid)
of the userdb, started on the first login of such a user and running under
that uid/gid with the user's supplementary groups (DESIGN "Processes";
Dovecot: mail-storage-service.c service_drop_privileges, master's
service-process.c).

The master tells a worker what to do over a SEQPACKET channel
(channel.py): `session` (a logged-in connection, the socket attached),
`deliver` (an LMTP recipient, the message attached as a file), `kick`,
`exit`. A worker reports `session-add` / `session-remove` (so `maa-adm who`,
`kick` and mail_max_userip_connections see every process) and answers
`deliver`. A worker's log lines come as JSON on its stderr and are written
by the master, which alone can open the log files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import pwd
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from maa_server import logs
from maa_server.auth.interface import UserInfo
from maa_server.auth.mail_access import resolve_gid, resolve_uid, uid_refusal
from maa_server.daemon.privsep.channel import (
    Channel,
    ChannelClosed,
    Requests,
    channel_pair,
)
from maa_server.protocols.context import LiveSession, SessionRegistry

log = logs.get_log("master")

# Settings a mail worker must not hold: it runs as a mail user, who could
# read its memory (ptrace, /proc/PID/mem).
SECRET_SETTINGS = ("ssl_key", "ssl_alt_key", "ssl_key_password", "ssl_client_key")
WORKER_START_TIMEOUT = 30.0
WORKER_EXIT_TIMEOUT = 5.0


class WorkerRefused(Exception):
    """The user may not have a worker; str() is Dovecot's log line."""


def credentials(user: UserInfo, config: Any) -> tuple[int, int, list[int]]:
    """uid, gid and supplementary groups for the user's worker; userdb
    fields win over mail_uid/mail_gid. Raises WorkerRefused."""
    reason = uid_refusal(user, config)
    if reason:
        raise WorkerRefused(reason)
    uid = user.uid if user.uid is not None else resolve_uid(str(config.get("mail_uid") or ""))
    gid = user.gid
    if gid is None:
        gid = resolve_gid(str(config.get("mail_gid") or ""))
    if uid is None:
        raise WorkerRefused("Mail access not permitted: no uid")
    if gid is None:
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            raise WorkerRefused(f"Mail access not permitted: no gid for uid {uid}") from None
    groups = [gid]
    try:
        name = pwd.getpwuid(uid).pw_name
        # mail_access_groups / the system groups of a system user, as
        # Dovecot's initgroups() for a uid that has a passwd entry.
        groups = os.getgrouplist(name, gid)
    except KeyError:
        pass
    extra = str(config.get("mail_access_groups") or "")
    for word in extra.replace(",", " ").split():
        resolved = resolve_gid(word)
        if resolved is not None and resolved not in groups:
            groups.append(resolved)
    return uid, gid, groups


def scrubbed_config(config: Any) -> Any:
    """A copy of the config for workers, without private keys."""
    import copy

    clone = copy.copy(config)
    clone._cache = {}
    scopes = []
    root = None
    for scope in [config.root, *config.scopes]:
        new = copy.copy(scope)
        new.assignments = {k: v for k, v in scope.assignments.items() if k not in SECRET_SETTINGS}
        if scope is config.root:
            root = new
        else:
            scopes.append(new)
    # Parents point into the original tree (which has the keys): remap.
    copies = {id(old): new for old, new in zip([config.root, *config.scopes], [root, *scopes])}
    for new in [root, *scopes]:
        parent = getattr(new, "parent", None)
        if parent is not None:
            new.parent = copies.get(id(parent))
    clone.root = root
    clone.scopes = scopes
    return clone


@dataclass(eq=False)
class Worker:
    key: tuple[int, int]
    proc: subprocess.Popen[bytes]
    channel: Channel
    retired: bool = False
    sessions: dict[str, LiveSession] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    requests: Requests = field(init=False)

    def __post_init__(self) -> None:
        self.requests = Requests(self.channel)

    @property
    def pid(self) -> int:
        return self.proc.pid


class WorkerPool:
    """Starts, feeds and reaps the mail workers of one master."""

    def __init__(self, registry: SessionRegistry) -> None:
        self.registry = registry
        self.workers: dict[tuple[int, int], Worker] = {}
        self.all: set[Worker] = set()
        self._starting: dict[tuple[int, int], asyncio.Future[Worker]] = {}
        self.config: Any = None
        self._config: Any = None
        self.stopping = False
        # Called with (user, remote_ip, protocol) when a session comes or goes.
        self.on_change: Callable[[str, str, str], None] | None = None

    def _changed(self, live: LiveSession) -> None:
        if self.on_change is not None:
            self.on_change(live.user, live.remote_ip, live.protocol)

    def set_config(self, config: Any) -> None:
        """A new configuration (start, SIGHUP): workers started before keep
        their sessions and end with them; new logins get new workers."""
        self.config = config
        self._config = scrubbed_config(config)
        for worker in list(self.workers.values()):
            self._retire(worker)

    # --- choosing a worker ---------------------------------------------

    async def worker_for(self, user: UserInfo) -> Worker:
        if self.stopping:
            raise WorkerRefused("Server shutting down.")
        # NSS lookups (getpwuid, getgrouplist) may block: off the event loop.
        uid, gid, groups = await asyncio.to_thread(credentials, user, self.config)
        key = (uid, gid)
        worker = self.workers.get(key)
        if worker is not None and worker.proc.poll() is None and not worker.channel.closed:
            return worker
        starting = self._starting.get(key)
        if starting is not None:
            return await asyncio.shield(starting)
        future: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
        self._starting[key] = future
        try:
            worker = await self._spawn(key, groups)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it too
            raise
        finally:
            self._starting.pop(key, None)
        future.set_result(worker)
        return worker

    async def _spawn(self, key: tuple[int, int], groups: list[int]) -> Worker:
        uid, gid = key
        ours, theirs = channel_pair()
        level = logging.getLogger("maa").getEffectiveLevel()
        try:
            # Started as root and dropping privileges itself once its code is
            # loaded: the interpreter and the package may live where the mail
            # user cannot read (worker.py).
            proc = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-m", "maa_server.daemon.privsep.worker", str(theirs.fileno()),
                 str(level), str(uid), str(gid), ",".join(map(str, groups))],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                pass_fds=(theirs.fileno(),), start_new_session=True, cwd="/", env=child_env())
        except OSError as exc:
            ours.close()
            raise WorkerRefused(f"can't start a mail process for uid {uid}: {exc.strerror or exc}") from exc
        finally:
            theirs.close()
        assert proc.stdin is not None
        from maa_server.daemon.privsep.worker import preload_names

        names = await asyncio.to_thread(preload_names)  # computed once (functools.cache)
        blob = pickle.dumps((self._config, names))
        stdin = proc.stdin
        await asyncio.to_thread(write_payload, stdin, blob)
        worker = Worker(key=key, proc=proc, channel=Channel(ours))
        worker.tasks.append(asyncio.ensure_future(self._read_messages(worker)))
        worker.tasks.append(asyncio.ensure_future(self._read_logs(worker)))
        self.workers[key] = worker
        self.all.add(worker)
        log.debug(f"started mail process {proc.pid} for uid {uid} gid {gid}")
        return worker

    def _retire(self, worker: Worker) -> None:
        if worker.retired:
            return
        worker.retired = True
        if self.workers.get(worker.key) is worker:
            del self.workers[worker.key]
        asyncio.ensure_future(self._send_quietly(worker, {"op": "exit"}))

    @staticmethod
    async def _send_quietly(worker: Worker, message: dict[str, Any]) -> None:
        with contextlib.suppress(ChannelClosed, OSError):
            await worker.channel.send(message)

    # --- hand-over and delivery ----------------------------------------

    async def send_session(self, user: UserInfo, message: dict[str, Any], fds: list[int]) -> None:
        """Give a logged-in connection to the user's worker. Raises
        WorkerRefused (Dovecot's reason) or ChannelClosed."""
        worker = await self.worker_for(user)
        reply = await worker.requests.ask(dict(message, op="session"), fds)
        if not reply.get("ok"):
            raise WorkerRefused(str(reply.get("error") or "mail process failed"))

    async def deliver(self, user: UserInfo, message: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        worker = await self.worker_for(user)
        return await worker.requests.ask(dict(message, op="deliver"), fds)

    # --- what workers say ----------------------------------------------

    async def _read_messages(self, worker: Worker) -> None:
        try:
            while True:
                message, fds = await worker.channel.recv()
                for fd in fds:  # a worker has no business sending descriptors
                    os.close(fd)
                self._on_message(worker, message)
        except ChannelClosed:
            pass
        except Exception as exc:  # noqa: BLE001 - a malformed message: treat the worker as gone
            log.error(f"mail process {worker.pid}: {type(exc).__name__}: {exc}")
        await self._reap(worker)

    def _on_message(self, worker: Worker, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "reply":
            worker.requests.answer(message)
        elif op == "session-add":
            sid = str(message.get("session_id", ""))
            live = LiveSession(user=str(message.get("user", "")), protocol=str(message.get("protocol", "")),
                               remote_ip=str(message.get("remote_ip", "")), session_id=sid,
                               kick=_Kicker(self, worker, sid))
            live.pid = worker.pid  # type: ignore[attr-defined]
            worker.sessions[sid] = live
            self.registry.add(live)
            self._changed(live)
        elif op == "session-remove":
            gone = worker.sessions.pop(str(message.get("session_id", "")), None)
            if gone is not None:
                self.registry.remove(gone)
                self._changed(gone)
        elif op == "idle":
            # The worker has nothing to do: no new work goes to it; it exits.
            self._retire(worker)

    async def _read_logs(self, worker: Worker) -> None:
        assert worker.proc.stderr is not None
        await relay_child_logs(worker.proc.stderr, f"mail process {worker.pid}")

    async def _reap(self, worker: Worker) -> None:
        worker.channel.close()
        worker.requests.fail("mail process exited")
        for live in worker.sessions.values():
            self.registry.remove(live)
            self._changed(live)
        worker.sessions.clear()
        if self.workers.get(worker.key) is worker:
            del self.workers[worker.key]
        try:
            code = await asyncio.wait_for(asyncio.to_thread(worker.proc.wait), WORKER_EXIT_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.kill()
            code = await asyncio.to_thread(worker.proc.wait)
        self.all.discard(worker)
        if code and not (self.stopping and code == -signal.SIGTERM):
            log.error(f"service(mail): child {worker.pid} {exit_description(code)}")

    # --- stopping ------------------------------------------------------

    async def shutdown(self, timeout: float) -> None:
        """SIGTERM to every worker (they say goodbye to their clients and
        log the disconnects), then wait for them to exit."""
        self.stopping = True
        await stop_children(self.all, timeout)


async def stop_children(children: set[Any], timeout: float) -> None:
    """SIGTERM to each child process (`.proc`), wait up to `timeout` for
    its tasks (`.tasks`: they reap it and drop it from `children`), then
    SIGKILL whatever is still in `children`."""
    stopping = list(children)
    for child in stopping:
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(signal.SIGTERM)
    tasks = [task for child in stopping for task in child.tasks]
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
    for child in list(children):
        with contextlib.suppress(ProcessLookupError):
            child.proc.kill()


async def relay_child_logs(stream: Any, label: str) -> None:
    """A child's stderr: JSON log records (written to our log as they
    are), or a traceback's text (logged as an error)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
    logger = logging.getLogger("maa")
    try:
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                break
            try:
                record = json.loads(line)
                logger.log(int(record["l"]), str(record["m"]), extra={"dovecot_prefix": str(record["p"])})
            except (ValueError, KeyError, TypeError):
                text = line.decode("utf-8", "replace").rstrip()
                if text:
                    log.error(f"{label}: {text}")
    finally:
        transport.close()


def exit_description(code: int) -> str:
    """Dovecot's wording for a child that ended badly, "" for a clean exit."""
    if code < 0:
        return f"killed with signal {-code} ({signal.Signals(-code).name})" \
            if -code in signal.Signals._value2member_map_ else f"killed with signal {-code}"
    return f"returned error {code}" if code else ""


class _Kicker:
    """LiveSession.kick for a session living in a worker: forwarded."""

    def __init__(self, pool: WorkerPool, worker: Worker, session_id: str) -> None:
        self.pool, self.worker, self.session_id = pool, worker, session_id

    def __call__(self) -> None:
        asyncio.ensure_future(self.pool._send_quietly(self.worker, {"op": "kick", "session_id": self.session_id}))


def write_payload(stream: Any, data: bytes) -> None:
    try:
        stream.write(len(data).to_bytes(8, "big") + data)
        stream.flush()
    except (BrokenPipeError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def child_env() -> dict[str, str]:
    """A clean environment for a child: nothing of root's, but the same
    Python paths, starting with where this package was imported from (a
    checkout run with `python -m` from its directory has no install)."""
    import maa_server

    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": os.environ.get("LANG", "C.UTF-8")}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    paths = [os.path.dirname(os.path.dirname(os.path.abspath(maa_server.__file__)))]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in paths]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
