"""auth_verbose lines, compared with what Dovecot 2.3.19 logged for the same
passdb chain and users (doveadm auth test -x rip=192.0.2.9 -x session=SESS)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from maa_server.auth import MaaAuthenticator
from maa_server.auth.interface import ClientInfo

CLIENT = ClientInfo(protocol="imap", remote_ip="192.0.2.9", local_ip="192.0.2.1",
                    secured=True, session_id="SESS")

# (login, password) -> the lines Dovecot wrote, in order
OBSERVED = [
    ("alice", "bad", ["auth: passwd-file(alice,192.0.2.9,<SESS>): unknown user",
                      "auth: passwd-file(alice,192.0.2.9,<SESS>): Password mismatch"]),
    ("nobody", "x", ["auth: passwd-file(nobody,192.0.2.9,<SESS>): unknown user",
                     "auth: passwd-file(nobody,192.0.2.9,<SESS>): unknown user"]),
    ("dave", "secret", ["auth: User found from deny passdb"]),
    ("carol", "secret", ["auth: passwd-file(carol,192.0.2.9,<SESS>): unknown user"]),
    ("erin", "secret", ["auth: passwd-file(erin,192.0.2.9,<SESS>): unknown user",
                        ("auth: passwd-file(erin,192.0.2.9,<SESS>): allow_nets check failed: "
                         "IP 192.0.2.9 not in allowed networks")]),
    ("nopw", "x", ["auth: passwd-file(nopw,192.0.2.9,<SESS>): unknown user",
                   "auth: passwd-file(nopw,192.0.2.9,<SESS>): Password mismatch"]),
    ("weird", "x", ["auth: passwd-file(weird,192.0.2.9,<SESS>): unknown user",
                    "auth: passwd-file(weird,192.0.2.9,<SESS>): Unknown scheme NOPE"]),
    ("alice*admin", "masterpw", ["auth: Master user logging in as alice",
                                 "auth: passwd-file(alice,192.0.2.9,<SESS>): unknown user"]),
    ("nobody*admin", "masterpw", ["auth: Master user logging in as nobody",
                                  "auth: passwd-file(nobody,192.0.2.9,<SESS>): unknown user",
                                  "auth: passwd-file(nobody,192.0.2.9,<SESS>): unknown user"]),
    ("alice*admin", "bad", ["auth: passwd-file(admin,192.0.2.9,master,<SESS>): Password mismatch"]),
    ("Al/ice", "x", [("auth: plain(?,192.0.2.9,<SESS>): Username character disallowed by "
                      "auth_username_chars: 0x2f (username: Al/ice)")]),
]


@pytest.fixture
def auth(make_auth: Callable[[str], MaaAuthenticator], tmp_path: Path) -> MaaAuthenticator:
    (tmp_path / "users").write_text(
        "alice:{PLAIN}secret:5000:5000::/var/vmail/alice::\n"
        "carol:{PLAIN}secret:5002:5000::/var/vmail/carol::nologin=y reason=Account\\ disabled\n"
        "dave:{PLAIN}secret:5003:5000::/var/vmail/dave::\n"
        "erin:{PLAIN}secret:5004:5000::/var/vmail/erin::allow_nets=10.0.0.0/8\n"
        "nopw::5005:5000::/var/vmail/nopw::\n"
        "weird:{NOPE}x:5006:5000::/var/vmail/weird::\n")
    (tmp_path / "deny").write_text("dave\n")
    (tmp_path / "masters").write_text("admin:{PLAIN}masterpw\n")
    return make_auth(f"""
auth_verbose = yes
auth_failure_delay = 0
auth_master_user_separator = *
passdb {{
  driver = passwd-file
  deny = yes
  args = {tmp_path}/deny
}}
passdb {{
  driver = passwd-file
  master = yes
  pass = yes
  args = {tmp_path}/masters
}}
passdb {{
  driver = passwd-file
  args = scheme=CRYPT {tmp_path}/users
}}
userdb {{
  driver = passwd-file
  args = {tmp_path}/users
}}
""")


@pytest.mark.parametrize("login,password,expected", OBSERVED, ids=[f"{u}/{p}" for u, p, _ in OBSERVED])
async def test_auth_verbose_lines_match_dovecot(auth: MaaAuthenticator, caplog: pytest.LogCaptureFixture,
                                                login: str, password: str, expected: list[str]) -> None:
    maa = logging.getLogger("maa")
    maa.addHandler(caplog.handler)
    propagate, maa.propagate = maa.propagate, False
    try:
        with caplog.at_level(logging.INFO, logger="maa"):
            await auth.verify_plain(login, password, CLIENT)
    finally:
        maa.removeHandler(caplog.handler)
        maa.propagate = propagate
    lines = [f"{getattr(r, 'dovecot_prefix', '?')}: {r.getMessage()}" for r in caplog.records
             if r.name == "maa"]
    assert lines == expected


async def test_passwords_never_logged(auth: MaaAuthenticator, caplog: pytest.LogCaptureFixture) -> None:
    maa = logging.getLogger("maa")
    maa.addHandler(caplog.handler)
    propagate, maa.propagate = maa.propagate, False
    try:
        with caplog.at_level(logging.DEBUG, logger="maa"):
            for login, password in (("alice", "Sup3rSecretPw"), ("weird", "Sup3rSecretPw"),
                                    ("alice*admin", "Sup3rSecretPw")):
                await auth.verify_plain(login, password, CLIENT)
    finally:
        maa.removeHandler(caplog.handler)
        maa.propagate = propagate
    assert caplog.records and not any("Sup3rSecretPw" in r.getMessage() for r in caplog.records)
