"""A byte-exact IMAP client for comparing servers' answers to the byte:
no parsing beyond finding the end of an answer (literals are read whole)."""

from __future__ import annotations

import socket
from typing import BinaryIO


class RawImap:
    """Connects to 127.0.0.1:`port` and reads the greeting; `command`
    returns every byte up to and including the tagged line (or `* BYE`)."""

    def __init__(self, port: int, *, tag_format: bytes = b"c%d", timeout: float = 15.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.counter = 0
        self.tag_format = tag_format
        self.greeting = self.line()

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def command(self, text: bytes) -> bytes:
        """`tag text`; literals in `text` must be LITERAL+ (`{n+}`)."""
        self.counter += 1
        tag = self.tag_format % self.counter
        self.sock.sendall(tag + b" " + text + b"\r\n")
        out = b""
        while True:
            line = self.line()
            out += line
            # A literal in the answer: its bytes verbatim, then the line goes on.
            while line.endswith(b"}\r\n") and b"{" in line:
                out += self.exact(int(line[line.rindex(b"{") + 1:-3].rstrip(b"+")))
                line = self.line()
                out += line
            if line.startswith((tag + b" ", b"* BYE")):
                return out

    def close(self) -> None:
        self.sock.close()


def assert_idle_sees(sock: socket.socket, reader: BinaryIO, expected: bytes, tag: bytes) -> None:
    """In IDLE (command `tag`): within the next few untagged lines comes
    `expected` (an EXISTS line; bounded by the socket timeout), then DONE
    ends the IDLE with a tagged OK."""
    untagged = [reader.readline()]
    while b"EXISTS" not in untagged[-1] and len(untagged) < 5:
        untagged.append(reader.readline())
    assert untagged[-1] == expected, untagged
    sock.sendall(b"DONE\r\n")
    while not (line := reader.readline()).startswith(tag + b" "):
        pass
    assert line.startswith(tag + b" OK")
