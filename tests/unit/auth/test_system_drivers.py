"""passwd / shadow / pam drivers (spec 3.5)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from maa_server.auth import MaaAuthenticator
from maa_server.auth.chain import PassdbResult
from maa_server.auth.drivers import DriverError, make_passdb, make_userdb
from maa_server.auth.drivers.system import ShadowPassdb
from maa_server.auth.interface import AuthStatus, ClientInfo
from maa_server.auth.schemes import generate
from maa_server.auth.varexpand import user_parts

from .conftest import LOCAL


async def test_shadow_reads_the_file(tmp_path: Path) -> None:
    hashed = generate("SHA512-CRYPT", "secret").removeprefix("{SHA512-CRYPT}")
    shadow = tmp_path / "shadow"
    shadow.write_text(f"root:*:19000:0:99999:7:::\nsam:{hashed}:19000:0:99999:7:::\n")
    passdb = ShadowPassdb("")
    passdb.shadow_path = str(shadow)
    look = await passdb.lookup("sam", user_parts("sam"))
    assert look.result is PassdbResult.OK and look.password == hashed
    assert passdb.default_scheme == "CRYPT" and passdb.worker
    assert (await passdb.lookup("nobody2", user_parts("nobody2"))).result is PassdbResult.USER_UNKNOWN
    passdb.shadow_path = str(tmp_path / "missing")
    assert (await passdb.lookup("sam", user_parts("sam"))).result is PassdbResult.INTERNAL_FAILURE


def test_blocking_args() -> None:
    assert not make_passdb("shadow", "blocking=no").worker
    with pytest.raises(DriverError, match="Unknown setting"):
        make_passdb("passwd", "foo=bar")


async def test_passwd_userdb() -> None:
    userdb = make_userdb("passwd", "blocking=no")
    result, fields = await userdb.lookup("root", user_parts("root"), {})
    assert result is PassdbResult.OK
    assert (fields["uid"], fields["gid"], fields["home"]) == ("0", "0", "/root")
    result, _ = await userdb.lookup("no-such-user-x", user_parts("no-such-user-x"), {})
    assert result is PassdbResult.USER_UNKNOWN


async def test_passwd_userdb_hands_out_any_uid(make_auth: Callable[[str], MaaAuthenticator]) -> None:
    auth = make_auth("""
auth_failure_delay = 0
passdb {
  driver = static
  args = nopassword
}
userdb {
  driver = passwd
}
""")
    ok = await auth.verify_plain("nobody", "x", LOCAL)  # uid 65534
    assert ok.ok and ok.user is not None and ok.user.uid == 65534
    # root's uid 0 is below first_valid_uid (500): as in Dovecot, auth hands
    # it out and the mail session refuses it (mail-storage-service.c).
    root = await auth.verify_plain("root", "x", LOCAL)
    assert root.ok and root.user is not None and root.user.uid == 0


async def test_pam_wrong_password_logs_like_dovecot_worker(
        make_auth: Callable[[str], MaaAuthenticator], caplog: pytest.LogCaptureFixture) -> None:
    """Real PAM (/etc/pam.d/dovecot, pam_unix): a wrong password for root."""
    if not Path("/etc/pam.d/dovecot").exists() and not Path("/etc/pam.d/other").exists():
        pytest.skip("no PAM service configuration")
    auth = make_auth("""
auth_failure_delay = 0
auth_verbose = yes
passdb {
  driver = pam
}
""")
    maa = logging.getLogger("maa")
    maa.addHandler(caplog.handler)
    propagate, maa.propagate = maa.propagate, False
    try:
        client = ClientInfo(protocol="imap", remote_ip="192.0.2.5", session_id="S1")
        with caplog.at_level(logging.INFO, logger="maa"):
            result = await auth.verify_plain("root", "certainly-not-the-password", client)
    finally:
        maa.removeHandler(caplog.handler)
        maa.propagate = propagate
    assert result.status is AuthStatus.FAIL
    lines = [f"{getattr(r, 'dovecot_prefix', '')}: {r.getMessage()}" for r in caplog.records]
    assert any(line.startswith("auth-worker(") and ": auth-worker<1>: pam(root,192.0.2.5,<S1>): "
               "pam_authenticate() failed: Authentication failure (Password mismatch?)" in line
               for line in lines), lines
    # PAM cannot serve non-plaintext mechanisms or user lookups
    assert await auth.lookup_user("root") is None


@pytest.mark.parametrize("field", ["*", "!", "!$6$abc", ""])
async def test_locked_shadow_entry_is_disabled(tmp_path: Path, field: str) -> None:
    # observed: `shadow(daemon,...): invalid password field`, and the chain ends
    shadow = tmp_path / "shadow"
    shadow.write_text(f"sam:{field}:19000:0:99999:7:::\n")
    passdb = ShadowPassdb("")
    passdb.shadow_path = str(shadow)
    look = await passdb.lookup("sam", user_parts("sam"))
    assert look.result is PassdbResult.USER_DISABLED and look.error == "invalid password field"


async def test_user_out_of_uid_range_prints_header_and_fails(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    from maa_server.cli.adm import main

    conf = tmp_path / "maa.conf"
    conf.write_text("passdb {\n driver = static\n args = nopassword\n}\nuserdb {\n driver = passwd\n}\n")
    code = await asyncio.to_thread(main, ["-c", str(conf), "user", "daemon"])
    out, err = capsys.readouterr()
    assert (code, out) == (75, "field\tvalue\n")  # as doveadm 2.3.19
    assert "first_valid_uid" in err
    code = await asyncio.to_thread(main, ["-c", str(conf), "user", "nobody"])
    out, _ = capsys.readouterr()
    assert (code, out) == (0, ("field\tvalue\nuid\t65534\ngid\t65534\nhome\t/nonexistent\nmail\t\n"
                               "system_groups_user\tnobody\n"))
