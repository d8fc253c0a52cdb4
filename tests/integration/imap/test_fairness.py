"""Issue #5 "timeouts and fairness" and SEARCH with CHARSET literals, over
real sockets: a client that asks for megabytes and does not read them holds
back only itself (backpressure on writes), and a big FETCH arrives whole."""

from __future__ import annotations

import imaplib
import socket

from tests.integration.imap.harness import PASSWORD, ImapServer, Wire
from tests.integration.imap.test_mailboxes import answers

BIG = 3 * 1024 * 1024  # per message: several MB in flight, far beyond socket buffers


def _append_big(server: ImapServer, count: int) -> bytes:
    body = (b"x" * 76 + b"\r\n") * (BIG // 78)
    message = b"From: a@example.org\r\nSubject: big\r\n\r\n" + body
    with imaplib.IMAP4("127.0.0.1", server.port) as m:
        m.login("alice", PASSWORD)
        for _ in range(count):
            m.append("INBOX", None, None, message)
    return message


def test_a_client_that_does_not_read_blocks_only_itself(server: ImapServer) -> None:
    message = _append_big(server, 3)
    hog = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        hog.recv(1024)  # greeting
        hog.sendall(b"a LOGIN alice " + PASSWORD.encode() + b"\r\na2 SELECT INBOX\r\n"
                    b"a3 FETCH 1:* (BODY.PEEK[])\r\n")
        # The hog reads nothing more: its FETCH stalls on the full socket.
        # Another client is served meanwhile, mailbox and all.
        other = Wire(server.port)
        try:
            other.login()
            lines = answers(other, "SELECT INBOX")
            assert "* 3 EXISTS" in lines
            assert answers(other, "FETCH 2 (RFC822.SIZE)")[0] == \
                f"* 2 FETCH (RFC822.SIZE {len(message)})"
            assert answers(other, "NOOP")[-1] == "t4 OK NOOP completed"
        finally:
            other.close()
        # Now the hog reads: every byte of the three messages arrives.
        hog.settimeout(30)
        data = bytearray()
        while b"\r\na3 OK" not in data[-200:]:
            chunk = hog.recv(1 << 20)
            assert chunk, "connection closed"
            data += chunk
        assert data.count(b"BODY[] {%d}\r\n" % len(message)) == 3
        assert data.count(message) == 3
    finally:
        hog.close()


def test_search_charset_with_literals(server: ImapServer, wire: Wire) -> None:
    subject = "Gr\u00fc\u00dfe aus K\u00f6ln".encode()
    with imaplib.IMAP4("127.0.0.1", server.port) as m:
        m.login("alice", PASSWORD)
        m.append("INBOX", None, None, b"From: a@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= "
                 b"aus =?UTF-8?Q?K=C3=B6ln?=\r\n\r\nsch\xc3\xb6n\r\n")
        m.append("INBOX", None, None, b"From: b@example.org\r\nSubject: other\r\n\r\nplain\r\n")
    wire.login()
    wire.cmd("SELECT INBOX")
    # A synchronising literal: `+ OK`, then the UTF-8 bytes.
    wire.send(b"s1 SEARCH CHARSET UTF-8 SUBJECT {%d}\r\n" % len(subject))
    assert wire.readline() == "+ OK"
    wire.send(subject + b"\r\n")
    assert wire.until("s1")[0] == "* SEARCH 1"
    # LITERAL+ and ISO-8859-1: the same text in another charset.
    latin = "k\u00f6ln".encode("latin-1")
    wire.send(b"s2 SEARCH CHARSET ISO-8859-1 OR BODY {4+}\r\n" + "sch\u00f6n".encode("latin-1")[:4]
              + b" SUBJECT {%d+}\r\n" % len(latin) + latin + b"\r\n")
    assert wire.until("s2")[0] == "* SEARCH 1"
    # RFC 3501 6.4.4: an unknown charset is NO [BADCHARSET], the session goes on.
    assert answers(wire, "SEARCH CHARSET X-NOPE TEXT a")[0] == "t3 NO [BADCHARSET] Unknown charset"
    assert answers(wire, 'SEARCH CHARSET UTF-8 TEXT "plain"')[0] == "* SEARCH 2"
