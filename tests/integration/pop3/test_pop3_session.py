"""POP3 over real loopback sockets with poplib: every command, plain, STLS
and implicit TLS, against the real auth and Maildir storage. Expected texts
are Dovecot 2.3.19's (spec 7.4, observed)."""

from __future__ import annotations

import logging
import poplib
import re
import socket
import time
from pathlib import Path

import pytest

from tests.integration.pop3.maa_pop3_harness import (
    PASSWORD,
    MaaStack,
    client_tls_context,
    put_message,
)

MSG1 = b"From: a@example.org\nSubject: one\n\nline1\n.dotline\n..two\nend\n"
MSG2 = b"From: c@example.org\nSubject: two\n\nbody2\n"
MSG3 = b"From: e@example.org\nSubject: three\n\nbody3\nmore\n"


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


@pytest.fixture
def filled(stack: MaaStack) -> MaaStack:
    box = stack.maildir("alice")
    put_message(box, "1000.M1P1.host", MSG1)
    put_message(box, "1001.M1P2.host", MSG2)
    put_message(box, "1002.M1P3.host", MSG3)
    return stack


def connect(stack: MaaStack, mode: str = "plain") -> poplib.POP3:
    if mode == "ssl":
        return poplib.POP3_SSL("127.0.0.1", stack.pop3s_port, context=client_tls_context(), timeout=10)
    client = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=10)
    if mode == "stls":
        client.stls(client_tls_context())
    return client


def login(stack: MaaStack, mode: str = "plain", user: str = "alice") -> poplib.POP3:
    client = connect(stack, mode)
    client.user(user)
    assert client.pass_(PASSWORD) == b"+OK Logged in."
    return client


def log_lines(caplog: pytest.LogCaptureFixture, prefix: str, wanted: str) -> list[tuple[str, str]]:
    """(prefix, message) records; waits (bounded) until one starts with
    `wanted`, since the server logs right after its last reply."""
    for _ in range(100):
        records = [(getattr(r, "dovecot_prefix", ""), r.getMessage()) for r in list(caplog.records)]
        if any(p.startswith(prefix) and m.startswith(wanted) for p, m in records):
            return records
        time.sleep(0.05)
    return records


def files(stack: MaaStack, user: str = "alice") -> list[str]:
    box = stack.maildir(user)
    return sorted(p.name for sub in ("new", "cur") for p in (box / sub).iterdir())


# --- greeting, CAPA, STLS -------------------------------------------------------

def test_greeting_and_capa_before_login(stack: MaaStack) -> None:
    client = connect(stack)
    assert client.getwelcome() == b"+OK Dovecot (Debian) ready."
    resp, lines, _ = client._longcmd("CAPA")
    assert resp == b"+OK"
    assert lines == [b"CAPA", b"TOP", b"UIDL", b"RESP-CODES", b"PIPELINING", b"AUTH-RESP-CODE",
                     b"STLS", b"USER", b"SASL PLAIN LOGIN"]
    client.quit()


def test_stls_then_capa_drops_stls(stack: MaaStack) -> None:
    client = connect(stack, "stls")
    _, lines, _ = client._longcmd("CAPA")
    assert b"STLS" not in lines and b"USER" in lines
    with pytest.raises(poplib.error_proto, match="TLS is already active"):
        client._shortcmd("STLS")
    client.quit()


@pytest.mark.parametrize("mode", ["plain", "stls", "ssl"])
def test_login_and_transaction_over_every_transport(filled: MaaStack, mode: str) -> None:
    client = login(filled, mode)
    sizes = [len(crlf(m)) for m in (MSG1, MSG2, MSG3)]
    assert client.stat() == (3, sum(sizes))
    resp, lines, _ = client.list()
    assert resp == b"+OK 3 messages:"
    assert lines == [f"{i + 1} {s}".encode() for i, s in enumerate(sizes)]
    assert client.list(2) == f"+OK 2 {sizes[1]}".encode()
    resp, lines, _ = client.retr(1)
    assert resp == f"+OK {sizes[0]} octets".encode()
    assert b"\r\n".join(lines) + b"\r\n" == crlf(MSG1)
    _, lines, _ = client._longcmd("CAPA")
    assert lines == [b"CAPA", b"TOP", b"UIDL", b"RESP-CODES", b"PIPELINING", b"AUTH-RESP-CODE"]
    assert client.noop() == b"+OK"
    assert client.quit() == b"+OK Logging out."


def test_capa_on_implicit_tls_has_no_stls(stack: MaaStack) -> None:
    client = connect(stack, "ssl")
    _, lines, _ = client._longcmd("CAPA")
    assert b"STLS" not in lines
    client.quit()


# --- authentication ---------------------------------------------------------------

def test_wrong_password_and_pass_without_user(stack: MaaStack) -> None:
    client = connect(stack)
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR No username given.'"):
        client.pass_("x")
    client.user("alice")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Authentication failed."):
        client.pass_("wrong")
    client.user("alice")
    assert client.pass_(PASSWORD) == b"+OK Logged in."
    client.quit()


def test_auth_plain_with_and_without_initial_response(stack: MaaStack) -> None:
    import base64

    token = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
    client = connect(stack)
    assert client._shortcmd(f"AUTH PLAIN {token}") == b"+OK Logged in."
    client.quit()
    client = connect(stack)
    assert client._shortcmd("AUTH PLAIN") == b"+ "
    assert client._shortcmd(token) == b"+OK Logged in."
    client.quit()


def test_auth_login_and_abort_and_unknown_mechanism(stack: MaaStack) -> None:
    import base64

    client = connect(stack)
    with pytest.raises(poplib.error_proto, match="Unsupported authentication mechanism"):
        client._shortcmd("AUTH FOO")
    assert client._shortcmd("AUTH PLAIN") == b"+ "
    with pytest.raises(poplib.error_proto, match="Authentication aborted by client."):
        client._shortcmd("*")
    assert client._shortcmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6"
    assert client._shortcmd(base64.b64encode(b"alice").decode()) == b"+ UGFzc3dvcmQ6"
    assert client._shortcmd(base64.b64encode(PASSWORD.encode()).decode()) == b"+OK Logged in."
    client.quit()


def test_bare_auth_lists_mechanisms_and_apop_is_refused(stack: MaaStack) -> None:
    client = connect(stack)
    _, lines, _ = client._longcmd("AUTH")
    assert lines == [b"PLAIN", b"LOGIN"]
    with pytest.raises(poplib.error_proto, match="APOP not enabled."):
        client._shortcmd("APOP alice 0123456789abcdef0123456789abcdef")
    client.quit()


def test_wrong_state_commands_before_login(stack: MaaStack) -> None:
    client = connect(stack)
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR Unknown command.'$"):
        client.stat()
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR Unknown command.'$"):
        client._shortcmd("RETR 1")
    # the third bad command in a row ends the connection, as pop3-login does
    with pytest.raises(poplib.error_proto, match=r"Unknown command."):
        client._shortcmd("NOOP")
    assert client._getline()[0] == b"-ERR Too many invalid bad commands."
    client.close()


def test_plaintext_refused_on_insecure_connection(tmp_path: Path) -> None:
    stack = MaaStack(tmp_path, extra_config="auth_failure_delay = 0\ndisable_plaintext_auth = yes"
                     ).start()
    try:
        # From 127.0.0.2 to 127.0.0.1 without TLS: not secured (spec 7.4).
        sock = socket.create_connection(("127.0.0.1", stack.pop3_port), timeout=10,
                                        source_address=("127.0.0.2", 0))
        reader = sock.makefile("rb")
        assert reader.readline() == b"+OK Dovecot (Debian) ready.\r\n"
        sock.sendall(b"CAPA\r\n")
        lines = []
        while (line := reader.readline()) != b".\r\n":
            lines.append(line.rstrip(b"\r\n"))
        assert b"USER" not in lines and b"STLS" in lines
        assert b"SASL" in lines  # the SASL line is always there, maybe empty
        sock.sendall(b"USER alice\r\n")
        assert reader.readline() == (b"-ERR [AUTH] Plaintext authentication disallowed on "
                                     b"non-secure (SSL/TLS) connections.\r\n")
        sock.sendall(b"QUIT\r\n")
        assert reader.readline() == b"+OK Logging out\r\n"
        sock.close()
    finally:
        stack.stop()


# --- transaction ------------------------------------------------------------------

def test_top_and_uidl(filled: MaaStack) -> None:
    client = login(filled)
    resp, lines, _ = client.top(1, 0)
    assert resp == b"+OK"
    assert lines == [b"From: a@example.org", b"Subject: one", b""]
    _, lines, _ = client.top(3, 1)
    assert lines == [b"From: e@example.org", b"Subject: three", b"", b"body3"]
    resp, uidls, _ = client.uidl()
    assert resp == b"+OK"
    assert len(uidls) == 3
    number, uidl = uidls[0].split()
    assert number == b"1" and len(uidl) == 16  # %08Xu%08Xv
    assert client.uidl(1) == b"+OK 1 " + uidl
    client.quit()


def test_argument_errors_are_dovecots(filled: MaaStack) -> None:
    client = login(filled)
    cases = {
        "LIST 0": "-ERR There's no message 0.",
        "LIST 4": "-ERR There's no message 4.",
        "LIST a": "-ERR Invalid message number: a",
        "LIST 1 2": "-ERR Noise after message number:  2",
        "RETR": "-ERR Invalid message number: ",
        "TOP 1": "-ERR Noise after message number: ",
        "TOP 1 x": "-ERR Invalid size: x",
        "UIDL 1 x": "-ERR Noise after message number:  x",
        "FOOBAR": "-ERR Unknown command: FOOBAR",
        "USER alice": "-ERR Unknown command: USER",
        "LAST": "-ERR Unknown command: LAST",
    }
    for command, reply in cases.items():
        with pytest.raises(poplib.error_proto) as info:
            client._shortcmd(command)
        assert info.value.args[0] == reply.encode(), command
    # the session goes on after errors, even a very long line
    with pytest.raises(poplib.error_proto, match="Input line too long."):
        client._shortcmd("NOOP " + "x" * 10000)
    assert client.noop() == b"+OK"
    client.quit()


def test_dot_stuffing_round_trip(stack: MaaStack) -> None:
    body = b"Subject: dots\n\n.\n..\n.leading\nmid.dle\n...\n"
    put_message(stack.maildir("alice"), "2000.M1P1.host", body)
    client = login(stack)
    sock_file = client.file
    client._putcmd("RETR 1")
    raw = []
    while True:
        line = sock_file.readline()
        raw.append(line)
        if line == b".\r\n":
            break
    assert raw[0] == f"+OK {len(crlf(body))} octets\r\n".encode()
    assert b"".join(raw[1:]) == b"Subject: dots\r\n\r\n..\r\n...\r\n..leading\r\nmid.dle\r\n....\r\n.\r\n"
    client.quit()


def test_message_without_final_newline(stack: MaaStack) -> None:
    put_message(stack.maildir("alice"), "2000.M1P1.host", b"Subject: x\n\nno newline")
    client = login(stack)
    _, lines, _ = client.retr(1)
    assert lines == [b"Subject: x", b"", b"no newline"]
    client.quit()


def test_crlf_files_are_not_doubled(stack: MaaStack) -> None:
    put_message(stack.maildir("alice"), "2000.M1P1.host", b"Subject: x\r\n\r\nbody\r\n")
    client = login(stack)
    assert client.stat() == (1, 20)
    _, lines, _ = client.retr(1)
    assert lines == [b"Subject: x", b"", b"body"]
    client.quit()


# --- DELE, RSET, QUIT, flags -----------------------------------------------------------

def test_dele_then_rset_keeps_everything(filled: MaaStack) -> None:
    client = login(filled)
    assert client.dele(1) == b"+OK Marked to be deleted."
    with pytest.raises(poplib.error_proto, match="Message is deleted."):
        client.retr(1)
    with pytest.raises(poplib.error_proto, match="Message is deleted."):
        client.dele(1)
    assert client.stat()[0] == 2
    _, lines, _ = client.list()
    assert [line.split()[0] for line in lines] == [b"2", b"3"]
    assert client.rset() == b"+OK"
    assert client.stat()[0] == 3
    assert client.quit() == b"+OK Logging out."
    assert len(files(filled)) == 3


def test_dele_and_dropped_connection_deletes_nothing(filled: MaaStack) -> None:
    client = login(filled)
    client.dele(1)
    client.dele(2)
    client.retr(3)
    client.sock.shutdown(socket.SHUT_RDWR)
    client.close()
    client = login(filled)
    assert client.stat()[0] == 3
    client.quit()
    # nor was \Seen set by the RETR of the dropped session (Dovecot defers it to QUIT)
    assert not any(name.endswith("S") for name in files(filled))


def test_dele_then_quit_removes_and_retr_sets_seen(filled: MaaStack) -> None:
    client = login(filled)
    client.retr(2)
    client.dele(1)
    assert client.quit() == b"+OK Logging out, messages deleted."
    names = files(filled)
    assert len(names) == 2
    assert not any(name.startswith("1000.") for name in names)
    seen = [name for name in names if name.startswith("1001.")]
    assert seen and seen[0].endswith(":2,S")
    assert all(":2," in name for name in names)  # new/ moved to cur/ at login
    assert not list((filled.maildir("alice") / "new").iterdir())
    client = login(filled)
    assert client.stat()[0] == 2
    client.quit()


def test_no_flag_updates_leaves_files_alone(tmp_path: Path) -> None:
    stack = MaaStack(tmp_path, extra_config="auth_failure_delay = 0\npop3_no_flag_updates = yes").start()
    try:
        put_message(stack.maildir("alice"), "1000.M1P1.host", MSG1)
        client = login(stack)
        client.retr(1)
        client.quit()
        assert [p.name for p in (stack.maildir("alice") / "new").iterdir()] == ["1000.M1P1.host"]
    finally:
        stack.stop()


def test_logout_log_line(filled: MaaStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="maa")
    client = login(filled)
    client.top(1, 0)
    client.retr(1)
    client.dele(2)
    client.quit()
    size = sum(len(crlf(m)) for m in (MSG1, MSG2, MSG3))
    retr_bytes = len(f"+OK {len(crlf(MSG1))} octets\r\n") + len(crlf(MSG1)) + 2  # two stuffed dots
    top_bytes = len(b"+OK\r\nFrom: a@example.org\r\nSubject: one\r\n\r\n")
    records = log_lines(caplog, "pop3(alice)", "Disconnected: ")
    logins = [m for p, m in records if p == "pop3-login" and m.startswith("Login: ")]
    assert logins and logins[0].startswith("Login: user=<alice>, method=PLAIN, rip=127.0.0.1, "
                                           "lip=127.0.0.1, mpid=")
    assert ", secured, session=<" in logins[0]
    logouts = [(p, m) for p, m in records if m.startswith("Disconnected: Logged out")]
    assert logouts
    prefix, message = logouts[0]
    assert prefix.startswith("pop3(alice)<")
    assert message == (f"Disconnected: Logged out top=1/{top_bytes}, retr=1/{retr_bytes}, "
                       f"del=1/3, size={size}")


def test_login_failure_log_line_for_fail2ban(stack: MaaStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="maa")
    client = connect(stack)
    client.user("alice")
    with pytest.raises(poplib.error_proto):
        client.pass_("wrong")
    client.quit()
    lines = [m for p, m in log_lines(caplog, "pop3-login", "Disconnected: ") if p == "pop3-login"]
    pattern = re.compile(r"^Disconnected: Aborted login by logging out \(auth failed, 1 attempts in \d+ secs\): "
                         r"user=<alice>, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, secured, "
                         r"session=<[A-Za-z0-9+/]+>$")
    assert any(pattern.match(line) for line in lines), lines


def test_message_expunged_by_someone_else(filled: MaaStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="maa")
    client = login(filled)
    box = filled.maildir("alice")
    for _ in range(100):  # new/ -> cur/ may still be under way: remove it wherever it is
        found = [p for sub in ("new", "cur") for p in (box / sub).iterdir() if p.name.startswith("1000.")]
        if not found:
            break
        for path in found:
            path.unlink(missing_ok=True)
        time.sleep(0.01)
    with pytest.raises(poplib.error_proto) as info:
        client.retr(1)
    assert info.value.args[0] == b"-ERR Message 1 expunged."
    with pytest.raises(poplib.error_proto):
        client.top(1, 0)
    assert client.dele(1) == b"+OK Marked to be deleted."
    assert client.quit() == b"+OK Logging out, messages deleted."
    records = log_lines(caplog, "pop3(alice)", "Disconnected: ")
    logout = [m for p, m in records if p.startswith("pop3(alice)") and m.startswith("Disconnected: ")]
    # as Dovecot counts them (observed: top=1/0, retr=1/0)
    assert logout[0].startswith("Disconnected: Logged out top=1/0, retr=1/0, del=1/3, ")
