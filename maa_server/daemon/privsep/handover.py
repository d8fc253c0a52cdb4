"""Moving a logged-in connection from the process that did the login to the
user's worker (DESIGN "Processes"; Dovecot: login-common's
client_destroy_success + master-login.c passing the fd to the mail process).

The sending side stops reading, takes out what the client already sent
(pipelined commands after LOGIN are in our buffers, not in the kernel's)
and sends the socket with SCM_RIGHTS. A TLS connection cannot move (the
TLS state lives in this process): the worker gets one end of a socketpair
and this process relays plaintext between it and the TLS connection until
either side closes, as Dovecot's login processes proxy TLS to the imap
process (login-proxy / ssl-proxy).

The receiving side (the worker) rebuilds a Connection that reports the
original peer's addresses, TLS state and byte counters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from maa_server.protocols.connection import Connection

RELAY_CHUNK = 65536

# (message, fds) -> None; raises on failure. Sends the hand-over to the worker.
Sender = Callable[[dict[str, Any], list[int]], Awaitable[None]]


def connection_facts(conn: Connection) -> dict[str, Any]:
    """What the worker's Connection must report about the client."""
    return {"remote_ip": conn.remote_ip, "remote_port": conn.remote_port,
            "local_ip": conn.local_ip, "local_port": conn.local_port,
            "tls": conn.secured, "sni_name": conn.sni_name,
            "bytes_in": conn.bytes_in, "bytes_out": conn.bytes_out}


def _take_buffered(conn: Connection) -> bytes:
    """Stop reading and return every byte the client sent that the session
    has not consumed: Connection's buffer, then the StreamReader's. (Both
    are private; this module is the one place allowed to reach in.)"""
    transport: Any = conn._writer.transport
    with contextlib.suppress(AttributeError, RuntimeError):
        transport.pause_reading()
    reader = conn._reader
    pending = bytes(conn._buf) + bytes(getattr(reader, "_buffer", b""))
    conn._buf.clear()
    buffer = getattr(reader, "_buffer", None)
    if buffer is not None:
        buffer.clear()
    return pending


async def send_connection(conn: Connection, state: dict[str, Any], send: Sender) -> None:
    """Hand `conn` over with `state`. Returns when this process is done
    with the connection: at once for a plain socket, when the relay ends
    for TLS. Raises (connection untouched but paused) if the send fails."""
    await conn.drain()
    state = dict(state, connection=connection_facts(conn))
    buffered = _take_buffered(conn)
    state["buffered"] = base64.b64encode(buffered).decode("ascii")
    if conn.secured:
        await _send_relayed(conn, state, send)
        return
    raw = conn._writer.get_extra_info("socket")
    if raw is None:
        raise OSError("connection has no socket")
    await send(state, [raw.fileno()])
    # The worker holds its own descriptor now; closing ours does not end
    # the TCP connection (no shutdown(), just close()).
    conn.abort()


async def _send_relayed(conn: Connection, state: dict[str, Any], send: Sender) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await send(state, [theirs.fileno()])
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    transport: Any = conn._writer.transport
    with contextlib.suppress(AttributeError, RuntimeError):
        transport.resume_reading()
    await relay(conn, ours)


async def relay(conn: Connection, inner: socket.socket) -> None:
    """Copy plaintext both ways between the client's TLS connection and the
    worker's socket until one side closes; then close both."""
    reader, writer = await asyncio.open_connection(sock=inner)
    client_reader, client_writer = conn._reader, conn._writer

    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await src.read(RELAY_CHUNK)
                if not data:
                    break
                dst.write(data)
                await dst.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass

    up = asyncio.ensure_future(pump(client_reader, writer))
    down = asyncio.ensure_future(pump(reader, client_writer))
    try:
        await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        if down.done():
            # The worker closed: what it wrote has been relayed; finish
            # the TLS connection cleanly.
            up.cancel()
        else:
            # The client left: let the worker see EOF.
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(down), 5)
            down.cancel()
    finally:
        up.cancel()
        down.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 2)


class HandedOverConnection(Connection):
    """A Connection in the worker: the socket is the client's (or the relay
    to its TLS connection), the facts are those the login side saw."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 facts: dict[str, Any], buffered: bytes) -> None:
        super().__init__(reader, writer, server_ssl=None)
        self.remote_ip = str(facts.get("remote_ip", ""))
        self.remote_port = int(facts.get("remote_port", 0))
        self.local_ip = str(facts.get("local_ip", ""))
        self.local_port = int(facts.get("local_port", 0))
        self.bytes_in = int(facts.get("bytes_in", 0))
        self.bytes_out = int(facts.get("bytes_out", 0))
        self._relayed_tls = bool(facts.get("tls"))
        self._sni = str(facts.get("sni_name", ""))
        self._buf += buffered

    @property
    def secured(self) -> bool:
        return self._relayed_tls

    @property
    def sni_name(self) -> str:
        return self._sni


async def receive_connection(fd: int, state: dict[str, Any]) -> HandedOverConnection:
    """The worker's side of send_connection."""
    sock = socket.socket(fileno=fd)  # TCP (plain) or a socketpair end (TLS relay)
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock, limit=RELAY_CHUNK * 4)
    buffered = base64.b64decode(state.get("buffered", ""))
    return HandedOverConnection(reader, writer, dict(state.get("connection") or {}), buffered)
