"""SIGTERM while commands are in flight: every message the server said OK
to is in the Maildir whole, nothing is left half written (tmp/ empty, no
lock files), and the session logs Dovecot's `Server shutting down.`."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from .conftest import PASSWORD, Daemon


def _maildir(daemon: Daemon) -> Path:
    return daemon.home / "mail" / "alice" / "Maildir"


def test_sigterm_with_appends_in_flight(daemon: Daemon) -> None:
    messages = [f"Subject: m{i}\r\nMessage-ID: <m{i}@test>\r\n\r\n".encode() + b"x" * (300_000 + i) + b"\r\n"
                for i in range(6)]
    sock = socket.create_connection(("127.0.0.1", daemon.ports["imap"]), timeout=20)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"* OK")
    sock.sendall(f"l LOGIN alice {PASSWORD}\r\n".encode())
    while not (line := reader.readline()).startswith(b"l "):
        pass
    assert line.startswith(b"l OK")
    # Non-synchronizing literals (LITERAL+), all pipelined, then SIGTERM at once.
    for i, message in enumerate(messages):
        sock.sendall(f"a{i} APPEND INBOX {{{len(message)}+}}\r\n".encode() + message + b"\r\n")
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(20) == 0
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        # Closing with client data still unread makes the kernel send RST;
        # what was in flight to us may be lost then (so with Dovecot too).
        pass
    sock.close()
    replies = data.split(b"\r\n")
    confirmed = {int(r.split()[0][1:]) for r in replies if r.startswith(b"a") and b" OK " in r}

    maildir = _maildir(daemon)
    assert list((maildir / "tmp").iterdir()) == []
    stored = [p.read_bytes() for sub in ("new", "cur") for p in (maildir / sub).iterdir()]
    sent = {m.replace(b"\r\n", b"\n") for m in messages} | set(messages)
    assert all(body in sent for body in stored), "a message was stored cut short"
    assert len(stored) >= len(confirmed)
    for i in confirmed:
        assert messages[i] in stored or messages[i].replace(b"\r\n", b"\n") in stored
    leftovers = [name for _root, _dirs, files in os.walk(maildir) for name in files if name.endswith(".lock")]
    assert leftovers == []
    assert "Info: Disconnected: Server shutting down. in=" in daemon.log_text()


def test_sigterm_leaves_the_index_cache_written(daemon: Daemon) -> None:
    """The mail stores are closed on the way out (storage.factory
    close_all_stores): the index cache of an open mailbox is on disk."""
    import imaplib

    imap = imaplib.IMAP4("127.0.0.1", daemon.ports["imap"], timeout=10)
    imap.login("alice", PASSWORD)
    imap.append("INBOX", None, None, b"Subject: a\r\n\r\nbody\r\n")
    imap.select("INBOX")
    assert imap.fetch("1", "(BODYSTRUCTURE)")[0] == "OK"
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(20) == 0
    maildir = _maildir(daemon)
    assert (maildir / "maa-index.cache").stat().st_size > 0
    assert list((maildir / "tmp").iterdir()) == []
