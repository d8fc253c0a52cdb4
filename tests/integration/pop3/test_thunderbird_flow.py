"""What Thunderbird 153 sends over POP3 (shared/fixtures/thunderbird-pop3-
transcript.txt), replayed on the wire: CAPA, STLS, CAPA, AUTH PLAIN without
an initial response, STAT, LIST, UIDL, RETR each message, DELE each
(leave_on_server off), QUIT. Replies must be byte-for-byte Dovecot's."""

from __future__ import annotations

import base64
import socket
import ssl

from tests.integration.pop3.maa_pop3_harness import (
    PASSWORD,
    MaaStack,
    client_tls_context,
    put_message,
)

MESSAGES = [
    b"From: Bob Sender <bob@example.org>\nSubject: one\n\nBody one.\n",
    (b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\nSubject: zwei\nContent-Type: text/plain; "
     b"charset=\"utf-8\"\nContent-Transfer-Encoding: 8bit\n\nSch\xc3\xb6ne Gr\xc3\xbc\xc3\x9fe!\n"),
    b"From: a@example.org\nSubject: dots\n\n.starts with a dot\n",
]


class Wire:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def line(self) -> bytes:
        return self.reader.readline()

    def multi(self) -> list[bytes]:
        lines = []
        while (line := self.line()) != b".\r\n":
            lines.append(line)
        return lines

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")


def test_thunderbird_get_messages_with_stls_and_delete(stack: MaaStack) -> None:
    for i, data in enumerate(MESSAGES):
        put_message(stack.maildir("alice"), f"17000000{i:02d}.M{i}P1.host", data)
    raw = socket.create_connection(("127.0.0.1", stack.pop3_port), timeout=10)
    wire = Wire(raw)
    assert wire.line() == b"+OK Dovecot (Debian) ready.\r\n"
    wire.send("CAPA")
    assert wire.line() == b"+OK\r\n"
    assert wire.multi() == [b"CAPA\r\n", b"TOP\r\n", b"UIDL\r\n", b"RESP-CODES\r\n", b"PIPELINING\r\n",
                            b"AUTH-RESP-CODE\r\n", b"STLS\r\n", b"USER\r\n", b"SASL PLAIN LOGIN\r\n"]
    wire.send("STLS")
    assert wire.line() == b"+OK Begin TLS negotiation now.\r\n"
    tls = client_tls_context().wrap_socket(raw, server_hostname="localhost")
    assert isinstance(tls, ssl.SSLSocket)
    wire = Wire(tls)
    wire.send("CAPA")
    assert wire.line() == b"+OK\r\n"
    assert b"STLS\r\n" not in wire.multi()
    wire.send("AUTH PLAIN")
    assert wire.line() == b"+ \r\n"
    wire.send(base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode())
    assert wire.line() == b"+OK Logged in.\r\n"

    sizes = [len(m.replace(b"\n", b"\r\n")) for m in MESSAGES]
    wire.send("STAT")
    assert wire.line() == f"+OK 3 {sum(sizes)}\r\n".encode()
    wire.send("LIST")
    assert wire.line() == b"+OK 3 messages:\r\n"
    assert wire.multi() == [f"{i + 1} {s}\r\n".encode() for i, s in enumerate(sizes)]
    wire.send("UIDL")
    assert wire.line() == b"+OK\r\n"
    uidls = wire.multi()
    assert [u.split()[0] for u in uidls] == [b"1", b"2", b"3"]
    for i, data in enumerate(MESSAGES):
        wire.send(f"RETR {i + 1}")
        assert wire.line() == f"+OK {sizes[i]} octets\r\n".encode()
        body = b"".join(wire.multi())
        expected = data.replace(b"\n", b"\r\n").replace(b"\r\n.", b"\r\n..")
        assert body == expected
        wire.send(f"DELE {i + 1}")
        assert wire.line() == b"+OK Marked to be deleted.\r\n"
    wire.send("QUIT")
    assert wire.line() == b"+OK Logging out, messages deleted.\r\n"
    assert wire.line() == b""
    tls.close()
    assert not [p for sub in ("new", "cur") for p in (stack.maildir("alice") / sub).iterdir()]
