"""A userdb uid under first_valid_uid in single-process mode: the login
succeeds and the mail session refuses the user, with Dovecot 2.3.19's answer
and log lines (lib-storage/mail-storage-service.c), not an auth failure."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.integration.imap.harness import PASSWORD, ImapServer, Wire

REFUSAL = ("Mail access for users with UID 100 not permitted "
           "(see first_valid_uid in config file, uid from userdb lookup).")
BYE = "* BYE Internal error occurred. Refer to server log for more information."


@pytest.fixture
def low_uid_server(make_server) -> ImapServer:  # type: ignore[no-untyped-def]
    server: ImapServer = make_server("first_valid_uid = 500\n")
    home = server.root / "home" / "low"
    home.mkdir(parents=True)
    with (server.root / "users").open("a") as users:
        users.write(f"low:{{PLAIN}}{PASSWORD}:100:100::{home}::\n")
    return server


def test_uid_under_first_valid_uid_logs_in_then_bye(low_uid_server: ImapServer, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="maa")
    wire = Wire(low_uid_server.port)
    try:
        assert wire.cmd(f"LOGIN low {PASSWORD}") == ["t1 OK Logged in, but initialization failed."]
        assert wire.readline() == BYE
        assert wire.file.readline() == b""  # the server closed the connection
    finally:
        wire.close()
    low_uid_server.run(asyncio.sleep(0.05))
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Login: user=<low>, method=PLAIN, rip=127.0.0.1") for m in lines), lines
    assert REFUSAL in lines
    assert not (low_uid_server.root / "home" / "low" / "Maildir").exists()


def test_users_in_range_are_unaffected(low_uid_server: ImapServer) -> None:
    # alice has no uid in the userdb: nothing to check, as in Dovecot.
    wire = Wire(low_uid_server.port)
    try:
        assert wire.login()[-1].endswith("] Logged in")
    finally:
        wire.close()


def test_authenticate_plain_gets_the_same_answer(low_uid_server: ImapServer) -> None:
    import base64

    token = base64.b64encode(f"\0low\0{PASSWORD}".encode()).decode()
    wire = Wire(low_uid_server.port)
    try:
        assert wire.cmd(f"AUTHENTICATE PLAIN {token}") == ["t1 OK Logged in, but initialization failed."]
        assert wire.readline() == BYE
    finally:
        wire.close()
