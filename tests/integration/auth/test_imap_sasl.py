"""Auth through the real IMAP server on loopback: imaplib LOGIN, CRAM-MD5,
SCRAM-SHA-1/256 (RFC 5802 client written here), SASL-IR PLAIN (RFC 4959),
master users, and the failure replies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import imaplib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.imap import conftest as imap_conftest
from tests.integration.imap.harness import ImapServer, Wire

EXTRA = """
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
auth_master_user_separator = *
passdb {{
  driver = passwd-file
  master = yes
  pass = yes
  args = {root}/masters
}}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ImapServer]:
    if not imap_conftest._READY:
        pytest.skip("config/storage parts not available yet")
    (tmp_path / "masters").write_text("admin:{PLAIN}masterpw\n")
    running = ImapServer(tmp_path, extra_config=EXTRA.format(root=tmp_path)).start()
    try:
        yield running
    finally:
        running.stop()


def connect(server: ImapServer) -> imaplib.IMAP4:
    return imaplib.IMAP4("127.0.0.1", server.port, timeout=10)


def test_capabilities_list_configured_mechanisms(server: ImapServer) -> None:
    imap = connect(server)
    for mech in ("AUTH=PLAIN", "AUTH=LOGIN", "AUTH=CRAM-MD5", "AUTH=SCRAM-SHA-1", "AUTH=SCRAM-SHA-256"):
        assert mech in imap.capabilities
    imap.logout()


def test_login_and_failure(server: ImapServer) -> None:
    imap = connect(server)
    with pytest.raises(imaplib.IMAP4.error, match=r"\[AUTHENTICATIONFAILED\] Authentication failed."):
        imap.login("alice", "wrong")
    with pytest.raises(imaplib.IMAP4.error, match=r"\[AUTHENTICATIONFAILED\]"):
        imap.login("nosuchuser", "secret")
    assert imap.login("Alice", "secret")[0] == "OK"
    imap.logout()


def test_cram_md5(server: ImapServer) -> None:
    imap = connect(server)
    assert imap.login_cram_md5("alice", "secret")[0] == "OK"
    imap.logout()


def scram(user: str, password: str, algo: str) -> Callable[[bytes], bytes]:
    nonce = base64.b64encode(os.urandom(12)).decode()
    state: dict[str, bytes | str] = {}

    def step(challenge: bytes) -> bytes:
        if "bare" not in state:
            state["bare"] = f"n={user},r={nonce}"
            return f"n,,{state['bare']}".encode()
        if "signature" in state:
            assert challenge == b"v=" + base64.b64encode(state["signature"])  # type: ignore[arg-type]
            return b""
        attrs = dict(item.split("=", 1) for item in challenge.decode().split(","))
        assert attrs["r"].startswith(nonce)
        salted = hashlib.pbkdf2_hmac(algo, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", algo).digest()
        stored_key = hashlib.new(algo, client_key).digest()
        final = f"c=biws,r={attrs['r']}"
        message = f"{state['bare']},{challenge.decode()},{final}".encode()
        proof = bytes(a ^ b for a, b in zip(client_key, hmac.new(stored_key, message, algo).digest()))
        server_key = hmac.new(salted, b"Server Key", algo).digest()
        state["signature"] = hmac.new(server_key, message, algo).digest()
        return f"{final},p={base64.b64encode(proof).decode()}".encode()
    return step


@pytest.mark.parametrize("mech,algo", [("SCRAM-SHA-1", "sha1"), ("SCRAM-SHA-256", "sha256")])
def test_scram(server: ImapServer, mech: str, algo: str) -> None:
    imap = connect(server)
    assert imap.authenticate(mech, scram("alice", "secret", algo))[0] == "OK"
    imap.logout()
    imap = connect(server)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.authenticate(mech, scram("alice", "wrong", algo))
    imap.logout()


def test_sasl_ir_plain_and_master_user(server: ImapServer) -> None:
    wire = Wire(server.port)
    try:
        ir = base64.b64encode(b"\0alice\0secret").decode()
        assert wire.cmd(f"AUTHENTICATE PLAIN {ir}")[-1].startswith("t1 OK")
    finally:
        wire.close()
    imap = connect(server)
    assert imap.login("alice*admin", "masterpw")[0] == "OK"
    imap.logout()
    imap = connect(server)
    with pytest.raises(imaplib.IMAP4.error, match=r"\[AUTHORIZATIONFAILED\] Authorization failed"):
        imap.login("nobody*admin", "masterpw")
    imap.logout()
