"""Timeouts, maa-adm kick, COMPRESS=DEFLATE (RFC 4978), imap_capability and
the disconnect log lines of the mail process (spec 6.3)."""

from __future__ import annotations

import asyncio
import logging
import zlib

import pytest

from maa_server.protocols.imap import session as imap_session
from tests.integration.imap.harness import ImapServer, Wire


async def _settle() -> None:
    await asyncio.sleep(0.05)


def test_pre_auth_inactivity(server: ImapServer, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="maa")
    monkeypatch.setattr(imap_session, "PRE_AUTH_TIMEOUT", 0.3)
    w = Wire(server.port)
    try:
        assert w.readline() == "* BYE Disconnected for inactivity."
    finally:
        w.close()
    server.run(_settle())
    assert any(r.getMessage().startswith("Disconnected: Inactivity (no auth attempts in 0 secs): "
                                         "user=<>, rip=127.0.0.1") for r in caplog.records)


def test_autologout(server: ImapServer, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="maa")
    monkeypatch.setattr(imap_session, "AUTOLOGOUT", 0.3)
    w = Wire(server.port)
    try:
        w.login()
        assert w.readline() == "* BYE Disconnected for inactivity."
    finally:
        w.close()
    server.run(_settle())
    assert any(r.getMessage().startswith("Disconnected: Inactivity - no input for 0 secs in=")
               for r in caplog.records)


def test_connection_closed_log_names_last_command(server: ImapServer, caplog):
    caplog.set_level(logging.INFO, logger="maa")
    w = Wire(server.port)
    w.login()
    w.cmd("SELECT INBOX")
    w.close()
    server.run(_settle())
    server.run(_settle())
    assert any(r.getMessage().startswith("Disconnected: Connection closed (SELECT finished 0.")
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_kick_drops_the_session(server: ImapServer):
    w = Wire(server.port)
    try:
        w.login()

        async def kick() -> int:
            return server.ctx.sessions.kick("alice")

        assert server.run(kick()) == 1
        assert w.readline() == "* BYE Server shutting down."  # as after doveadm kick
        with pytest.raises((ConnectionError, OSError)):
            w.readline()
    finally:
        w.close()


def test_compress_deflate(make_server):
    srv = make_server("protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}")
    w = Wire(srv.port)
    try:
        caps = w.login()[-1]
        assert "COMPRESS=DEFLATE" in caps
        assert w.cmd("COMPRESS DEFLATE")[-1].startswith("t2 OK Begin compression")
        out = zlib.compressobj(6, zlib.DEFLATED, -15)
        inflate = zlib.decompressobj(-15)
        w.send(out.compress(b"t3 NOOP\r\n") + out.flush(zlib.Z_SYNC_FLUSH))
        data = b""
        while b"t3 OK" not in data:
            data += inflate.decompress(w.sock.recv(4096))
        assert data.startswith(b"t3 OK NOOP completed")
    finally:
        w.close()


def test_imap_capability_setting(make_server):
    srv = make_server("imap_capability = +XFOO")
    w = Wire(srv.port)
    try:
        assert "IDLE XFOO LITERAL+" in w.greeting
        assert " XFOO LITERAL+" in w.login()[-1]
    finally:
        w.close()


def test_store_failure_after_login_is_bye_with_mail_process_lines(server: ImapServer, caplog):
    caplog.set_level(logging.INFO, logger="maa")
    home = server.root / "home" / "bob"
    home.rmdir()
    home.write_text("not a directory")  # the Maildir cannot be made here
    w = Wire(server.port)
    try:
        w.send(b"a LOGIN bob secret\r\n")
        assert w.readline() == \
            "* BYE Internal error occurred. Refer to server log for more information."
    finally:
        w.close()
    server.run(_settle())
    records = [(getattr(r, "dovecot_prefix", ""), r.levelname, r.getMessage())
               for r in caplog.records]
    mail = [(lvl, m) for p, lvl, m in records if p.startswith("imap(bob)<")]
    assert mail[0][0] == "ERROR"
    assert mail[-1][1].startswith("Disconnected: ") and " in=0 out=" in mail[-1][1]
