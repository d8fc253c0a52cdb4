"""Every POP3 command with poplib over plain TCP, STLS (RFC 2595) and
implicit TLS (port 995 style), logging in with SASL PLAIN and an initial
response (RFC 5034 section 4), ending with DELE + QUIT applied in the
UPDATE state (RFC 1939 section 6)."""

from __future__ import annotations

import base64
import poplib

import pytest

from tests.integration.pop3.maa_pop3_harness import (
    PASSWORD,
    MaaStack,
    client_tls_context,
    put_message,
)

MESSAGES = [
    b"From: a@example.org\nSubject: one\n\nline1\n.dot\nend\n",
    b"From: b@example.org\nSubject: two\n\nbody2\n",
    b"From: c@example.org\nSubject: three\n\nbody3\nmore\n",
]


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def connect(stack: MaaStack, mode: str) -> poplib.POP3:
    if mode == "tls":
        return poplib.POP3_SSL("127.0.0.1", stack.pop3s_port, context=client_tls_context(), timeout=10)
    client = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=10)
    if mode == "stls":
        assert client.stls(client_tls_context()) == b"+OK Begin TLS negotiation now."
    return client


@pytest.mark.parametrize("mode", ["plain", "stls", "tls"])
def test_every_command(stack: MaaStack, mode: str) -> None:
    box = stack.maildir("alice")
    for number, message in enumerate(MESSAGES):
        put_message(box, f"100{number}.M1P{number}.host", message)
    sizes = [len(crlf(m)) for m in MESSAGES]

    client = connect(stack, mode)
    _, capa, _ = client._longcmd("CAPA")
    assert (b"STLS" in capa) == (mode == "plain")
    assert b"SASL PLAIN LOGIN" in capa and b"USER" in capa
    initial = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    assert client._shortcmd(f"AUTH PLAIN {initial}") == b"+OK Logged in."

    assert client.stat() == (3, sum(sizes))
    assert client.list() == (b"+OK 3 messages:",
                             [f"{n + 1} {s}".encode() for n, s in enumerate(sizes)],
                             sum(len(f"{n + 1} {s}") + 2 for n, s in enumerate(sizes)))
    assert client.list(2) == f"+OK 2 {sizes[1]}".encode()
    _, uidls, _ = client.uidl()
    assert [u.split()[0] for u in uidls] == [b"1", b"2", b"3"]
    assert client.uidl(2) == b"+OK " + uidls[1]
    assert client.top(1, 0)[1] == [b"From: a@example.org", b"Subject: one", b""]
    assert client.top(1, 1)[1] == [b"From: a@example.org", b"Subject: one", b"", b"line1"]
    resp, lines, _ = client.retr(1)
    assert resp == f"+OK {sizes[0]} octets".encode()
    assert b"\r\n".join(lines) + b"\r\n" == crlf(MESSAGES[0])  # poplib undid the dot-stuffing
    assert client.noop() == b"+OK"

    assert client.dele(2) == b"+OK Marked to be deleted."
    assert client.stat() == (2, sizes[0] + sizes[2])
    assert client.rset() == b"+OK"
    assert client.stat() == (3, sum(sizes))
    assert client.dele(3) == b"+OK Marked to be deleted."
    with pytest.raises(poplib.error_proto, match="Message is deleted."):
        client.top(3, 0)
    assert client.quit() == b"+OK Logging out, messages deleted."

    client = connect(stack, mode)
    client.user("alice")
    assert client.pass_(PASSWORD) == b"+OK Logged in."
    _, after, _ = client.uidl()
    assert after == uidls[:2]  # same UIDLs, message 3 gone for good
    assert client.quit() == b"+OK Logging out."
