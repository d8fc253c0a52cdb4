"""A message channel between the master and its children: one JSON object
per SOCK_SEQPACKET datagram, with file descriptors riding along as
SCM_RIGHTS (unix(7)). Sequenced packets keep message boundaries and order,
so no framing is needed, and descriptors arrive with the message they
belong to.

The master never unpickles what a child sends (a child runs as a mail user
and is not trusted); everything on this channel is JSON.
"""

from __future__ import annotations

import array
import asyncio
import itertools
import json
import os
import socket
from typing import Any

# One message must fit one datagram; pre-login bytes a client pipelined are
# at most one IMAP line (64 KiB) before base64.
MAX_MESSAGE = 1 << 20
MAX_FDS = 4


class ChannelClosed(Exception):
    """The other side went away."""


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair; both ends get buffers big enough for MAX_MESSAGE."""
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in (left, right):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE * 2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MAX_MESSAGE * 2)
    return left, right


class Channel:
    """Async send/receive of (message, fds) on a SEQPACKET socket."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.closed = False
        self._send_lock = asyncio.Lock()

    def fileno(self) -> int:
        return self.sock.fileno()

    async def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = json.dumps(message, separators=(",", ":")).encode()
        if len(data) > MAX_MESSAGE:
            raise ValueError(f"message too large ({len(data)} bytes)")
        ancillary = []
        if fds:
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        async with self._send_lock:
            while True:
                if self.closed:
                    raise ChannelClosed("channel closed")
                try:
                    self.sock.sendmsg([data], ancillary)
                    return
                except BlockingIOError:
                    await self._wait(writable=True)
                except (BrokenPipeError, ConnectionResetError, OSError) as exc:
                    self.closed = True
                    raise ChannelClosed(str(exc)) from exc

    async def recv(self) -> tuple[dict[str, Any], list[int]]:
        """The next message and its descriptors (the caller owns them)."""
        while True:
            if self.closed:
                raise ChannelClosed("channel closed")
            try:
                data, fds, flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, MAX_FDS)
            except BlockingIOError:
                await self._wait(writable=False)
                continue
            except (ConnectionResetError, OSError) as exc:
                self.closed = True
                raise ChannelClosed(str(exc)) from exc
            if not data and not fds:
                self.closed = True
                raise ChannelClosed("EOF")
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                for fd in fds:
                    os.close(fd)
                raise ChannelClosed("truncated message")
            try:
                message = json.loads(data)
            except ValueError as exc:
                for fd in fds:
                    os.close(fd)
                raise ChannelClosed(f"malformed message: {exc}") from exc
            if not isinstance(message, dict):
                for fd in fds:
                    os.close(fd)
                raise ChannelClosed("malformed message")
            return message, list(fds)

    async def _wait(self, *, writable: bool) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self.sock.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        if writable:
            loop.add_writer(fd, wake)
        else:
            loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            if writable:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


class Requests:
    """Requests on a Channel that wait for their reply: each goes out with
    an `id`, and the reader hands every `op: reply` message to answer()."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    async def ask(self, message: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        """Send and wait for the other side's answer to this message."""
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        try:
            await self.channel.send(dict(message, id=request_id), fds)
            return await future
        finally:
            self.pending.pop(request_id, None)

    def answer(self, reply: dict[str, Any]) -> None:
        """A reply arrived: wake the request with its id (a late or unknown
        one is dropped)."""
        future = self.pending.get(int(reply.get("id", 0)))
        if future is not None and not future.done():
            future.set_result(reply)

    def fail(self, reason: str) -> None:
        """The other side is gone: every waiting request raises ChannelClosed."""
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ChannelClosed(reason))
