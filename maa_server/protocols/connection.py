"""The I/O shell shared by IMAP, POP3 and ManageSieve.

A `Connection` moves bytes between a socket and a protocol session: line
and literal reads with limits, writes with backpressure, STARTTLS, and
COMPRESS=DEFLATE (RFC 4978). It knows nothing of any protocol; sessions do
their parsing sans-IO and use only these few calls.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib

READ_CHUNK = 65536
# Writes are gathered up to this size (or to the end of the loop turn, or
# the next drain) and go out in one send(): a FETCH of 10,000 envelopes is
# then a few dozen syscalls instead of 10,000.
WRITE_GATHER = 65536


class LineTooLong(Exception):
    """A line exceeded the limit; the rest of it was discarded.

    `head` holds the line's first bytes (so IMAP can still answer with the
    command's tag)."""

    def __init__(self, head: bytes = b"") -> None:
        super().__init__("line too long")
        self.head = head


class ConnectionClosed(Exception):
    """The peer went away (EOF or reset)."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 server_ssl: ssl.SSLContext | None = None) -> None:
        self._reader = reader
        self._writer = writer
        self._buf = bytearray()
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None
        self.server_ssl = server_ssl  # for STARTTLS; None when TLS is not set up
        # Set by the daemon when it drops the connection itself (a login
        # service's `Connection queue full`): the session logs it as reason.
        self.disconnect_reason = ""
        self._out: list[bytes] = []  # written, not yet handed to the transport
        self._out_size = 0
        self._flush_pending = False
        self.bytes_in = 0
        self.bytes_out = 0
        peer = writer.get_extra_info("peername") or ("", 0)
        sock = writer.get_extra_info("sockname") or ("", 0)
        if isinstance(peer, str):  # unix socket
            peer, sock = ("", 0), ("", 0)
        self.remote_ip, self.remote_port = str(peer[0]), int(peer[1])
        self.local_ip, self.local_port = str(sock[0]), int(sock[1])

    # --- state ---------------------------------------------------------

    @property
    def secured(self) -> bool:
        """TLS is on (implicit or after STARTTLS)."""
        return self._writer.get_extra_info("ssl_object") is not None

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        return self._writer.get_extra_info("ssl_object")

    @property
    def compressed(self) -> bool:
        return self._deflate is not None

    @property
    def sni_name(self) -> str:
        """The server name the client asked for in its TLS ClientHello (SNI),
        "" without TLS or SNI; the daemon's SNI callback records it
        (maa_server/daemon/tls.py). For ClientInfo.local_name."""
        obj = self._writer.get_extra_info("ssl_object")
        return str(getattr(obj, "maa_server_name", "") or "") if obj is not None else ""

    @property
    def closing(self) -> bool:
        """The transport is closed or closing (the peer left or we closed)."""
        return self._writer.is_closing()

    @property
    def has_buffered_input(self) -> bool:
        return bool(self._buf)

    # --- reading -------------------------------------------------------

    async def _fill(self) -> None:
        try:
            data = await self._reader.read(READ_CHUNK)
        except (ConnectionError, ssl.SSLError) as exc:
            raise ConnectionClosed(str(exc)) from exc
        if not data:
            raise ConnectionClosed("EOF")
        self.bytes_in += len(data)
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(data)
            except zlib.error as exc:
                raise ConnectionClosed(f"deflate error: {exc}") from exc
        self._buf += data

    async def readline(self, limit: int) -> bytes:
        """One line including its LF. Over `limit` bytes: the line is read to
        its end and thrown away, then LineTooLong is raised, so the session
        can answer BAD/-ERR and go on."""
        start = 0
        while True:
            idx = self._buf.find(b"\n", start)
            if idx >= 0:
                if idx + 1 > limit:
                    head = bytes(self._buf[:128])
                    del self._buf[: idx + 1]
                    raise LineTooLong(head)
                line = bytes(self._buf[: idx + 1])
                del self._buf[: idx + 1]
                return line
            if len(self._buf) > limit:
                head = bytes(self._buf[:128])
                await self._discard_line()
                raise LineTooLong(head)
            start = len(self._buf)
            await self._fill()

    async def _discard_line(self) -> None:
        while True:
            idx = self._buf.find(b"\n")
            if idx >= 0:
                del self._buf[: idx + 1]
                return
            self._buf.clear()
            await self._fill()

    async def read_exactly(self, n: int) -> bytes:
        """Exactly n bytes (an IMAP literal)."""
        while len(self._buf) < n:
            await self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def discard(self, n: int) -> None:
        """Throw away n bytes without keeping them (a refused literal)."""
        while n > 0:
            if not self._buf:
                await self._fill()
            k = min(n, len(self._buf))
            del self._buf[:k]
            n -= k

    # --- writing -------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes for the peer; they leave at the next drain(), when
        WRITE_GATHER bytes are waiting, or at the end of this loop turn,
        whichever comes first (so a write is never left behind)."""
        if self._deflate is not None:
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self.bytes_out += len(data)
        if len(data) >= WRITE_GATHER:
            self.flush()  # big data goes as it is, not copied into a join
            self._writer.write(data)
            return
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= WRITE_GATHER:
            self.flush()
        elif not self._flush_pending:
            self._flush_pending = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop running: nothing to wait for
                self.flush()

    def flush(self) -> None:
        """Hand what write() gathered to the transport now."""
        self._flush_pending = False
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        self._out_size = 0
        self._writer.write(data)

    async def drain(self) -> None:
        """Wait while the peer is slow to read (backpressure)."""
        self.flush()
        try:
            await self._writer.drain()
        except (ConnectionError, ssl.SSLError) as exc:
            raise ConnectionClosed(str(exc)) from exc

    async def send(self, data: bytes) -> None:
        self.write(data)
        await self.drain()

    # --- upgrades ------------------------------------------------------

    async def start_tls(self) -> None:
        """Upgrade to TLS in place (IMAP STARTTLS, POP3 STLS). Input that the
        client pipelined after the command is dropped, as RFC 2595 wants."""
        if self.server_ssl is None:
            raise RuntimeError("TLS is not configured")
        self._buf.clear()
        self.flush()
        await self._writer.drain()
        try:
            await self._writer.start_tls(self.server_ssl)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            raise ConnectionClosed(f"TLS handshake failed: {exc}") from exc

    def start_compress(self) -> None:
        """RFC 4978 COMPRESS=DEFLATE: raw deflate both ways from now on.
        Bytes already buffered were sent before the client compressed."""
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)
        pending, self._buf = bytes(self._buf), bytearray()
        if pending:
            self._buf += self._inflate.decompress(pending)

    # --- closing -------------------------------------------------------

    async def close(self) -> None:
        try:
            self.flush()
            if self._deflate is not None:
                self._writer.write(self._deflate.flush(zlib.Z_FINISH))
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), 2)
        except (ConnectionError, ssl.SSLError, OSError, asyncio.TimeoutError, RuntimeError):
            pass

    def close_soon(self) -> None:
        """Close once what was written has gone out (maa-adm kick, SIGTERM):
        unlike abort() a goodbye line is not thrown away; reads then see EOF."""
        if not self._writer.is_closing():
            self.flush()
            self._writer.close()
        # A TLS close waits for the peer's close_notify before reads see EOF;
        # the session must end now, whatever the peer does.
        self._reader.feed_eof()

    def abort(self) -> None:
        self._out.clear()
        self._out_size = 0
        transport = self._writer.transport
        if transport is not None:
            transport.abort()
