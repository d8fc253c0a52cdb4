"""A byte-exact ManageSieve test client: send a command, read the answer up
to its final OK / NO / BYE line (literals in the answer are read whole)."""

from __future__ import annotations

import base64
import re
import socket
import ssl

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class RawSieve:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.read_response()

    def read_response(self) -> bytes:
        out = b""
        while True:
            line = self.file.readline()
            if not line:
                return out
            out += line
            m = _LITERAL.search(line)
            if m:
                out += self.file.read(int(m.group(1)))
                if line.startswith((b"OK", b"NO", b"BYE")):
                    return out + self.file.readline()  # the CRLF ending the response
                continue
            if line.startswith((b"OK", b"NO", b"BYE")):
                return out

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: str | bytes) -> bytes:
        data = line.encode() if isinstance(line, str) else line
        self.send(data if data.endswith(b"\r\n") else data + b"\r\n")
        return self.read_response()

    def challenge(self, line: str) -> bytes:
        """Send a command that the server answers with one SASL challenge line."""
        self.send(line.encode() + b"\r\n")
        return self.file.readline()

    def login(self, user: str = "alice", password: str = "secret") -> bytes:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.cmd(f'AUTHENTICATE "PLAIN" "{token}"')

    def starttls(self) -> bytes:
        answer = self.cmd("STARTTLS")
        assert answer == b'OK "Begin TLS negotiation now."\r\n', answer
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")
        return self.read_response()

    def close(self) -> None:
        self.file.close()
        self.sock.close()
