"""Greeting, CAPABILITY, LOGIN/AUTHENTICATE, STARTTLS, implicit TLS, ID,
LOGOUT and the login log lines, as Dovecot 2.3 answers (spec sections 6, 7)."""

from __future__ import annotations

import base64
import imaplib
import logging

import pytest

from tests.integration.imap.harness import PASSWORD, ImapServer, Wire, client_tls

PRE = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+"


def test_greeting_and_prelogin_capability(server: ImapServer, wire: Wire):
    # 127.0.0.1 -> 127.0.0.1 counts as secured: AUTH= listed, no LOGINDISABLED.
    assert wire.greeting == (f"* OK [CAPABILITY {PRE} STARTTLS AUTH=PLAIN AUTH=LOGIN] "
                             "Dovecot (Debian) ready.")
    assert wire.cmd("CAPABILITY") == [
        f"* CAPABILITY {PRE} STARTTLS AUTH=PLAIN AUTH=LOGIN",
        "t1 OK Pre-login capabilities listed, post-login capabilities have more."]


def test_starttls_then_capability_and_login_code(server: ImapServer, wire: Wire):
    wire.starttls()
    caps = wire.cmd("CAPABILITY")
    assert caps[0] == f"* CAPABILITY {PRE} AUTH=PLAIN AUTH=LOGIN"
    reply = wire.login()
    # After STARTTLS the CAPABILITY command does not suppress the code.
    assert reply[-1].startswith("t3 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE "
                                "IDLE ")
    assert reply[-1].endswith("] Logged in")
    assert "UIDPLUS" in reply[-1] and "SPECIAL-USE" in reply[-1]


def test_capability_before_login_moves_list_untagged(wire: Wire):
    wire.cmd("CAPABILITY")
    reply = wire.login()
    assert reply[0].startswith("* CAPABILITY IMAP4rev1 ")
    assert reply[-1] == "t2 OK Logged in"


def test_implicit_tls_has_no_starttls(server: ImapServer):
    w = Wire(server.tls_port, tls=True)
    try:
        assert "STARTTLS" not in w.greeting
        assert w.login()[-1].endswith("Logged in")
    finally:
        w.close()


def test_login_failure_text_and_log(server: ImapServer, wire: Wire, caplog):
    caplog.set_level(logging.INFO, logger="maa")
    assert wire.cmd("LOGIN alice wrong") == [
        "t1 NO [AUTHENTICATIONFAILED] Authentication failed."]
    assert wire.cmd("LOGOUT") == ["* BYE Logging out", "t2 OK Logout completed."]
    wire.close()
    server.run(_settle())
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Disconnected: Aborted login by logging out (auth failed, 1 attempts "
                            "in ") and "user=<alice>, method=PLAIN, rip=127.0.0.1" in m
               for m in lines), lines


async def _settle() -> None:
    import asyncio
    await asyncio.sleep(0.05)


def test_login_log_line_and_logout_stats(server: ImapServer, caplog):
    caplog.set_level(logging.INFO, logger="maa")
    w = Wire(server.port)
    w.login()
    w.cmd("NOOP")
    w.cmd("LOGOUT")
    w.close()
    server.run(_settle())
    records = [(getattr(r, "dovecot_prefix", ""), r.getMessage()) for r in caplog.records]
    login = [m for p, m in records if p == "imap-login" and m.startswith("Login: ")]
    assert login and login[0].startswith("Login: user=<alice>, method=PLAIN, rip=127.0.0.1, "
                                         "lip=127.0.0.1, mpid=")
    assert ", secured, session=<" in login[0]
    out = [(p, m) for p, m in records if m.startswith("Disconnected: Logged out in=")]
    assert out and out[0][0].startswith("imap(alice)<")
    assert "deleted=0 expunged=0 trashed=0 hdr_count=0" in out[0][1]


def test_authenticate_plain_with_continuation(wire: Wire):
    wire.send(b"a AUTHENTICATE PLAIN\r\n")
    assert wire.readline() == "+ "
    wire.send(base64.b64encode(f"\0alice\0{PASSWORD}".encode()) + b"\r\n")
    assert wire.until("a")[-1].endswith("Logged in")


def test_authenticate_sasl_ir_and_abort(wire: Wire):
    wire.send(b"a AUTHENTICATE PLAIN\r\n")
    assert wire.readline() == "+ "
    wire.send(b"*\r\n")
    assert wire.until("a") == ["a BAD Authentication aborted by client."]
    token = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    assert wire.cmd(f"AUTHENTICATE PLAIN {token}")[-1].endswith("Logged in")


def test_unknown_mechanism(wire: Wire):
    assert wire.cmd("AUTHENTICATE X-NONE") == ["t1 NO Unsupported authentication mechanism."]


def test_id_and_bad_commands(wire: Wire):
    assert wire.cmd('ID ("name" "Thunderbird" "version" "153.7.0")') == [
        '* ID ("name" "Dovecot")', "t1 OK ID completed."]
    assert wire.cmd("SELECT INBOX") == ["t2 BAD Error in IMAP command received by server."]
    assert wire.cmd("NOOP") == ["t3 OK NOOP completed."]
    assert wire.cmd("FOO") == ["t4 BAD Error in IMAP command received by server."]
    assert wire.cmd("BAR") == ["t5 BAD Error in IMAP command received by server."]
    # The third bad command in a row ends the session, as imap-login does.
    wire.send(b"\r\n")
    assert wire.readline() == "* BYE Too many invalid IMAP commands."


def test_literal_login_both_kinds(wire: Wire):
    wire.send(b"a LOGIN {5}\r\n")
    assert wire.readline() == "+ OK"
    wire.send(b"alice {6+}\r\n" + PASSWORD.encode() + b"\r\n")
    assert wire.until("a")[-1].endswith("Logged in")


def test_too_long_line_is_bad_and_session_continues(wire: Wire):
    wire.login()
    wire.send(b"x1 NOOP " + b"a" * 70000 + b"\r\n")
    assert wire.readline().startswith("x1 BAD ")
    assert wire.cmd("NOOP")[-1].startswith("t2 OK NOOP completed")


def test_post_login_commands_refused(wire: Wire):
    wire.login()
    assert wire.cmd("LOGIN a b") == [
        "t2 BAD Error in IMAP command LOGIN: Unknown command (0.000 + 0.000 secs)."]
    assert wire.cmd("FETCH 1 FLAGS") == ["t3 BAD No mailbox selected (0.000 + 0.000 secs)."]


def test_imaplib_over_starttls(server: ImapServer):
    with imaplib.IMAP4("127.0.0.1", server.port) as m:
        m.starttls(client_tls())
        typ, _ = m.login("alice", PASSWORD)
        assert typ == "OK"
        assert m.select("INBOX")[0] == "OK"


def test_plaintext_refused_without_tls(server: ImapServer):
    # 127.0.0.2 -> 127.0.0.1 is neither TLS nor same-IP: not secured.
    w = Wire(server.port, source="127.0.0.2")
    try:
        assert w.greeting.endswith("STARTTLS LOGINDISABLED] Dovecot (Debian) ready.")
        assert w.cmd("LOGIN alice secret") == [
            ("* BAD [ALERT] Plaintext authentication not allowed without SSL/TLS, but your "
             "client did it anyway. If anyone was listening, the password was exposed."),
            ("t1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
             "(SSL/TLS) connections.")]
        assert w.cmd("AUTHENTICATE PLAIN") == [
            "t2 NO [PRIVACYREQUIRED] Plaintext authentication disabled."]
        w.starttls()
        assert w.login()[-1].endswith("Logged in")
    finally:
        w.close()


def test_max_userip_connections(make_server):
    srv = make_server("mail_max_userip_connections = 1")
    a, b = Wire(srv.port), Wire(srv.port)
    try:
        assert a.login()[-1].endswith("Logged in")
        # Observed from Dovecot 2.3.19: NO [LIMIT], then the connection closes.
        assert b.login() == [("t1 NO [LIMIT] Maximum number of connections from user+IP "
                              "exceeded (mail_max_userip_connections=1)")]
        with pytest.raises((ConnectionError, OSError, EOFError)):
            b.cmd("NOOP")
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("tls", [False, True])
def test_enable_and_compress_refused_without_plugin(server: ImapServer, tls: bool):
    w = Wire(server.tls_port if tls else server.port, tls=tls)
    try:
        w.login()
        assert w.cmd("ENABLE CONDSTORE QRESYNC")[:1] == ["* ENABLED CONDSTORE QRESYNC"]
        assert "COMPRESS" not in " ".join(w.cmd("CAPABILITY"))
        # Dovecot without imap_zlib does not know the command at all.
        assert w.cmd("COMPRESS DEFLATE")[-1].startswith(
            "t4 BAD Error in IMAP command COMPRESS: Unknown command")
    finally:
        w.close()


def test_session_id_in_dovecot_shape_and_sasl_abandoned(server: ImapServer, caplog):
    import base64 as b64
    import re as _re

    caplog.set_level(logging.INFO, logger="maa")
    w = Wire(server.port)
    port = w.sock.getsockname()[1]
    w.send(b"a AUTHENTICATE PLAIN\r\n")
    assert w.readline() == "+ "
    w.close()
    server.run(_settle())
    lines = [r.getMessage() for r in caplog.records]
    line = next(m for m in lines if m.startswith("Disconnected: Connection closed (client didn't "
                                                 "finish SASL auth, waited 0 secs)"))
    session = _re.search(r"session=<([^>]+)>", line).group(1)
    raw = b64.b64decode(session + "==")
    assert len(session) == 16 and raw[6:8] == port.to_bytes(2, "little")
    assert raw[8:] == bytes([127, 0, 0, 1])


def test_refused_non_synchronizing_literal_is_swallowed(wire: Wire):
    wire.send(b"a LOGIN {70000+}\r\n" + b"x" * 70000 + b" pass\r\n")
    assert wire.readline() == "a BAD Error in IMAP command received by server."
    assert wire.cmd("NOOP") == ["t1 OK NOOP completed."]
    wire.send(b"b LOGIN {70000}\r\n")
    assert wire.readline().startswith("b BAD ")  # no "+ OK": the client never sends it
    assert wire.login()[-1].endswith("Logged in")


def test_ssl_required_from_an_unsecured_address(make_server):
    srv = make_server("ssl = required")
    w = Wire(srv.port, source="127.0.0.2")
    try:
        assert w.greeting == ("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
                              "LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Debian) ready.")
        assert w.cmd("AUTHENTICATE CRAM-MD5") == [
            "t1 NO [PRIVACYREQUIRED] Authentication not allowed until SSL/TLS is enabled."]
        assert w.cmd("LOGIN alice secret")[-1].startswith("t2 NO [PRIVACYREQUIRED]")
        w.starttls()
        assert "AUTH=PLAIN" in w.cmd("CAPABILITY")[0]
        assert w.login()[-1].endswith("Logged in")
    finally:
        w.close()
