"""A small asyncio IMAP/POP3 client for load generation.

Reads responses literally (it follows `{n}` literals by count) and keeps no
parsed state beyond what the workloads need, so the client costs little next
to the servers it measures."""

from __future__ import annotations

import asyncio
import re
import ssl

LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r\n$")


class ImapError(Exception):
    pass


class ImapClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.tag = 0
        self.bytes_read = 0

    @classmethod
    async def connect(cls, host: str, port: int, tls: bool = False) -> ImapClient:
        ctx = None
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx, limit=1 << 20)
        client = cls(reader, writer)
        await client._read_line()  # greeting
        return client

    async def _read_line(self) -> bytes:
        line = await self.reader.readuntil(b"\n")
        self.bytes_read += len(line)
        return line

    async def _read_response_line(self) -> bytes:
        """One logical response line, literals included."""
        parts = []
        while True:
            line = await self._read_line()
            parts.append(line)
            m = LITERAL_AT_END.search(line)
            if not m:
                return b"".join(parts)
            data = await self.reader.readexactly(int(m.group(1)))
            self.bytes_read += len(data)
            parts.append(data)

    async def command(self, text: str | bytes, literal: bytes | None = None,
                      check: bool = True) -> list[bytes]:
        """Send a command; return the untagged lines. Raises ImapError on NO/BAD
        (on BAD only, when `check` is false)."""
        self.tag += 1
        tag = b"A%d" % self.tag
        raw = text.encode() if isinstance(text, str) else text
        if literal is not None:
            self.writer.write(tag + b" " + raw + b" {%d}\r\n" % len(literal))
            await self.writer.drain()
            cont = await self._read_line()
            if not cont.startswith(b"+"):
                raise ImapError(cont.decode(errors="replace"))
            self.writer.write(literal + b"\r\n")
        else:
            self.writer.write(tag + b" " + raw + b"\r\n")
        await self.writer.drain()
        lines: list[bytes] = []
        while True:
            line = await self._read_response_line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK") and (check or line.startswith(tag + b" BAD")):
                    raise ImapError(line.decode(errors="replace").strip())
                return lines
            lines.append(line)

    async def login(self, user: str, password: str) -> None:
        await self.command(f'LOGIN "{user}" "{password}"')

    async def idle_start(self) -> None:
        self.tag += 1
        self.writer.write(b"A%d IDLE\r\n" % self.tag)
        await self.writer.drain()
        line = await self._read_line()
        if not line.startswith(b"+"):
            raise ImapError(line.decode(errors="replace"))

    async def close(self) -> None:
        try:
            self.writer.close()
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError, OSError):
            pass


class Pop3Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.bytes_read = 0

    @classmethod
    async def connect(cls, host: str, port: int) -> Pop3Client:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        client = cls(reader, writer)
        await reader.readuntil(b"\n")
        return client

    async def command(self, text: str, multiline: bool = False) -> bytes:
        self.writer.write(text.encode() + b"\r\n")
        await self.writer.drain()
        status = await self.reader.readuntil(b"\n")
        if not status.startswith(b"+OK"):
            raise ImapError(status.decode(errors="replace"))
        if not multiline:
            return status
        data = await self.reader.readuntil(b"\r\n.\r\n")
        self.bytes_read += len(data)
        return data

    async def close(self) -> None:
        try:
            self.writer.write(b"QUIT\r\n")
            await self.writer.drain()
            self.writer.close()
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
