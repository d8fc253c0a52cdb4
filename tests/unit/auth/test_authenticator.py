"""build_authenticator end to end: config text, passwd-files, chains, userdbs."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from maa_server.auth import AuthConfigError, MaaAuthenticator
from maa_server.auth.interface import AuthStatus, ClientInfo
from maa_server.auth.schemes import generate

from .conftest import LOCAL, REMOTE

Make = Callable[[str], MaaAuthenticator]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "users").write_text(
        f"alice:{generate('SHA512-CRYPT', 'secret')}:5000:5000::/var/vmail/alice::\n"
        "bob:{PLAIN}secret:5001:5000::/var/vmail/bob::userdb_mail=maildir:~/Maildir:LAYOUT=fs\n"
        "carol:{PLAIN}secret:5002:5000::/var/vmail/carol::nologin=y reason=Account\\ disabled\n"
        "dave:{PLAIN}secret:5003:5000::/var/vmail/dave::\n"
        "erin:{PLAIN}secret:5004:5000::/var/vmail/erin::allow_nets=10.0.0.0/8\n")
    (tmp_path / "deny").write_text("dave\n")
    (tmp_path / "masters").write_text("admin:{PLAIN}masterpw\n")
    return tmp_path


def tutorial(d: Path, extra: str = "") -> str:
    """The tutorial's passdb block (issue 4) with a deny passdb first and a master passdb."""
    return f"""
auth_failure_delay = 0
auth_master_user_separator = *
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
{extra}
passdb {{
  driver = passwd-file
  deny = yes
  args = {d}/deny
}}
passdb {{
  driver = passwd-file
  master = yes
  pass = yes
  args = {d}/masters
}}
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {d}/users
  result_success = return-ok
  result_failure = continue
  result_internalfail = continue
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
}}
"""


async def test_tutorial_block(make_auth: Make, files: Path) -> None:
    auth = make_auth(tutorial(files))
    ok = await auth.verify_plain("Alice", "secret", LOCAL)
    assert ok.status is AuthStatus.OK and ok.username == "alice"
    assert ok.user is not None and (ok.user.uid, ok.user.gid, ok.user.home) == \
        (5000, 5000, "/var/vmail/alice")
    assert (await auth.verify_plain("alice", "wrong", LOCAL)).status is AuthStatus.FAIL
    assert (await auth.verify_plain("nobody", "secret", LOCAL)).status is AuthStatus.FAIL
    # listed in the deny passdb: refused although the password is right
    assert (await auth.verify_plain("dave", "secret", LOCAL)).status is AuthStatus.FAIL
    bob = await auth.verify_plain("bob", "secret", LOCAL)
    assert bob.user is not None and bob.user.mail == "maildir:~/Maildir:LAYOUT=fs"


async def test_master_user_logins(make_auth: Make, files: Path) -> None:
    auth = make_auth(tutorial(files))
    r = await auth.verify_plain("alice*admin", "masterpw", LOCAL)
    assert r.status is AuthStatus.OK and r.username == "alice" and r.master_user == "admin"
    r = await auth.verify_plain("nobody*admin", "masterpw", LOCAL)
    assert r.status is AuthStatus.FAIL and r.reason == "Authorization failed"
    r = await auth.verify_plain("alice*admin", "secret", LOCAL)  # the target's password: no
    assert r.status is AuthStatus.FAIL and r.reason == ""
    # a denied user stays denied for master logins too
    assert (await auth.verify_plain("dave*admin", "masterpw", LOCAL)).status is AuthStatus.FAIL
    # SASL PLAIN with an authorization identity (spec 3.8, form 2)
    sasl = auth.start_sasl("PLAIN", LOCAL)
    assert sasl is not None
    step = await sasl.step(b"alice\0admin\0masterpw")
    assert step.result is not None and step.result.ok and step.result.username == "alice"


async def test_nologin_and_allow_nets(make_auth: Make, files: Path) -> None:
    auth = make_auth(tutorial(files))
    carol = await auth.verify_plain("carol", "secret", LOCAL)
    assert carol.status is AuthStatus.NOLOGIN and carol.reason == "Account\\"
    assert (await auth.verify_plain("carol", "bad", LOCAL)).status is AuthStatus.FAIL
    assert (await auth.verify_plain("erin", "secret", LOCAL)).status is AuthStatus.FAIL
    inside = ClientInfo(protocol="imap", remote_ip="10.1.2.3", secured=True)
    assert (await auth.verify_plain("erin", "secret", inside)).ok


async def test_passwd_file_change_seen_by_next_login(make_auth: Make, files: Path) -> None:
    auth = make_auth(tutorial(files))
    assert (await auth.verify_plain("bob", "secret", LOCAL)).ok
    users = files / "users"
    users.write_text(users.read_text().replace("bob:{PLAIN}secret", "bob:{PLAIN}changed")
                     + "frank:{PLAIN}new:5009:5000::/home/frank::\n")
    st = users.stat()
    os.utime(users, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert not (await auth.verify_plain("bob", "secret", LOCAL)).ok
    assert (await auth.verify_plain("bob", "changed", LOCAL)).ok
    assert (await auth.verify_plain("frank", "new", LOCAL)).ok


async def test_plaintext_policy(make_auth: Make, files: Path) -> None:
    auth = make_auth(tutorial(files, "login_trusted_networks = 198.51.100.0/24"))
    assert auth.plaintext_allowed(LOCAL)
    assert not auth.plaintext_allowed(REMOTE)
    tls = ClientInfo(protocol="imap", remote_ip="192.0.2.10", local_ip="192.0.2.1", secured=True)
    assert auth.plaintext_allowed(tls)
    trusted = ClientInfo(protocol="imap", remote_ip="198.51.100.7", local_ip="192.0.2.1")
    assert auth.plaintext_allowed(trusted)
    assert auth.mechanisms(LOCAL) == ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"]
    assert auth.mechanisms(REMOTE) == ["CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"]
    assert auth.start_sasl("PLAIN", REMOTE) is None
    assert auth.start_sasl("DIGEST-MD5", LOCAL) is None
    open_auth = make_auth(tutorial(files, "disable_plaintext_auth = no"))
    assert open_auth.plaintext_allowed(REMOTE)


async def test_secured_means_same_ip_not_loopback(make_auth: Make, files: Path) -> None:
    """login-common: secured = TLS || trusted || remote IP == local IP. Observed
    with Dovecot 2.3.19: 127.0.0.2 -> 127.0.0.1 and 127.0.0.1 -> 127.0.0.2 get
    no USER / AUTH=PLAIN, 127.0.0.2 -> 127.0.0.2 does."""
    auth = make_auth(tutorial(files))

    def client(rip: str, lip: str, secured: bool = False) -> ClientInfo:
        return ClientInfo(protocol="pop3", remote_ip=rip, local_ip=lip, secured=secured)

    assert auth.is_secured(client("127.0.0.1", "127.0.0.1"))
    assert auth.is_secured(client("127.0.0.2", "127.0.0.2"))
    assert not auth.is_secured(client("127.0.0.2", "127.0.0.1"))
    assert not auth.is_secured(client("127.0.0.1", "127.0.0.2"))
    assert not auth.is_secured(client("::1", "127.0.0.1"))
    assert auth.is_secured(client("::ffff:127.0.0.1", "127.0.0.1"))
    assert auth.is_secured(client("", ""))  # UNIX socket: both ends without an IP
    assert auth.is_secured(client("127.0.0.2", "127.0.0.1", secured=True))  # TLS
    assert auth.mechanisms(client("127.0.0.2", "127.0.0.1")) == [
        "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"]
    trusting = make_auth(tutorial(files, "login_trusted_networks = 127.0.0.2/32"))
    assert trusting.is_secured(client("127.0.0.2", "127.0.0.1"))
    assert not trusting.is_secured(client("127.0.0.3", "127.0.0.1"))


async def test_default_mechanisms_is_plain(make_auth: Make, files: Path) -> None:
    auth = make_auth(f"auth_failure_delay = 0\npassdb {{\n driver = passwd-file\n args = {files}/users\n}}\n")
    assert auth.mechanisms(LOCAL) == ["PLAIN"]


async def test_static_passdb_and_userdb(make_auth: Make) -> None:
    auth = make_auth("""
auth_failure_delay = 0
passdb {
  driver = static
  args = password=pw%n
}
userdb {
  driver = static
  args = uid=5000 gid=5000 home=/srv/mail/%d/%n allow_all_users=yes
}
""")
    r = await auth.verify_plain("joe@example.org", "pwjoe", LOCAL)
    assert r.ok and r.user is not None and r.user.home == "/srv/mail/example.org/joe"
    assert not (await auth.verify_plain("joe@example.org", "pw", LOCAL)).ok
    info = await auth.lookup_user("anyone@example.org")
    assert info is not None and info.uid == 5000


async def test_nopassword_and_prefetch(make_auth: Make, tmp_path: Path) -> None:
    (tmp_path / "users").write_text("kim::::::: nopassword userdb_uid=6000 userdb_gid=6000 "
                                    "userdb_home=/home/%u\n")
    auth = make_auth(f"""
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = {tmp_path}/users
}}
userdb {{
  driver = prefetch
}}
""")
    r = await auth.verify_plain("kim", "anything", LOCAL)
    assert r.ok and r.user is not None and (r.user.uid, r.user.home) == (6000, "/home/kim")
    info = await auth.lookup_user("kim")
    assert info is not None and info.gid == 6000
    assert await auth.lookup_user("nobody") is None


async def test_first_valid_uid_is_the_mail_process_check_not_auths(make_auth: Make, files: Path) -> None:
    # As in Dovecot, auth hands out the uid; the mail session refuses it
    # (mail-storage-service.c; tests/integration/*/test_mail_access.py).
    auth = make_auth(tutorial(files, "first_valid_uid = 5002"))
    r = await auth.verify_plain("alice", "secret", LOCAL)
    assert r.ok and r.user is not None and r.user.uid == 5000
    info = await auth.lookup_user("alice")
    assert info is not None and info.uid == 5000
    assert (await auth.verify_plain("erin", "secret",
                                    ClientInfo(protocol="imap", remote_ip="10.0.0.1"))).ok


async def test_unknown_uid_name_tempfails_the_userdb_lookup(make_auth: Make, caplog) -> None:  # type: ignore[no-untyped-def]
    # userdb.c userdb_parse_uid(): "Invalid UID value", the lookup tempfails.
    auth = make_auth("""
auth_failure_delay = 0
passdb {
  driver = static
  args = password=pw
}
userdb {
  driver = static
  args = uid=no-such-user-maa gid=100 home=/srv/%n allow_all_users=yes
}
""")
    caplog.set_level(logging.ERROR, logger="maa")
    assert (await auth.verify_plain("joe", "pw", LOCAL)).status is AuthStatus.TEMPFAIL
    assert any("Invalid UID value 'no-such-user-maa'" in r.getMessage() for r in caplog.records)


async def test_internal_failure_is_temporary(make_auth: Make, tmp_path: Path) -> None:
    auth = make_auth("""
auth_failure_delay = 0
passdb {
  driver = static
  args = password=%{nosuchvariable}
}
""")
    assert (await auth.verify_plain("a", "b", LOCAL)).status is AuthStatus.TEMPFAIL


async def test_unknown_scheme_is_a_mismatch(make_auth: Make, tmp_path: Path) -> None:
    (tmp_path / "users").write_text("a:{NOPE}x\n")
    auth = make_auth(f"auth_failure_delay = 0\npassdb {{\n driver = passwd-file\n"
                     f" args = {tmp_path}/users\n}}\n")
    assert (await auth.verify_plain("a", "x", LOCAL)).status is AuthStatus.FAIL


async def test_username_chars(make_auth: Make, files: Path) -> None:
    auth = make_auth(tutorial(files))
    assert (await auth.verify_plain("al/ice", "secret", LOCAL)).status is AuthStatus.FAIL


async def test_mechanisms_and_username_filter_select_passdbs(make_auth: Make, tmp_path: Path) -> None:
    (tmp_path / "a").write_text("u@a.test:{PLAIN}one\n")
    (tmp_path / "b").write_text("u@a.test:{PLAIN}two\n")
    auth = make_auth(f"""
auth_failure_delay = 0
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = {tmp_path}/a
  mechanisms = LOGIN
}}
passdb {{
  driver = passwd-file
  args = {tmp_path}/b
  username_filter = *@a.test !root@a.test
}}
""")
    assert (await auth.verify_plain("u@a.test", "two", LOCAL, "PLAIN")).ok
    assert not (await auth.verify_plain("u@a.test", "one", LOCAL, "PLAIN")).ok
    assert (await auth.verify_plain("u@a.test", "one", LOCAL, "LOGIN")).ok


@pytest.mark.parametrize("block,message", [
    ("passdb {\n driver = nosuch\n}\n", "Unknown passdb driver"),
    ("passdb {\n driver = sql\n args = /etc/dovecot/sql.conf\n}\n", "'sql' is not supported"),
    ("userdb {\n driver = ldap\n}\n", "'ldap' is not supported"),
    ("passdb {\n driver = passwd-file\n args = bogus=1 /x\n}\n", "Unknown setting"),
    ("passdb {\n driver = static\n args = password=x\n pass = yes\n}\n", "Last passdb can't have pass=yes"),
])
def test_config_errors(make_auth: Make, block: str, message: str) -> None:
    with pytest.raises(AuthConfigError, match=message):
        make_auth(block)


async def test_unknown_user_costs_like_wrong_password(make_auth: Make, tmp_path: Path) -> None:
    """Loose bound: an unknown user also pays one bcrypt verification."""
    (tmp_path / "users").write_text(f"alice:{generate('BLF-CRYPT', 'secret', rounds=8)}\n")
    auth = make_auth(f"auth_failure_delay = 0\npassdb {{\n driver = passwd-file\n"
                     f" args = {tmp_path}/users\n}}\n")
    # the first wrong-password login makes alice's hash the timing reference
    async def timed(user: str) -> float:
        start = time.perf_counter()
        for _ in range(3):
            assert not (await auth.verify_plain(user, "wrong", LOCAL)).ok
        return time.perf_counter() - start
    wrong, unknown = await timed("alice"), await timed("nosuchuser")
    assert unknown > wrong / 4, (unknown, wrong)


async def test_bcrypt_runs_off_the_event_loop(make_auth: Make, tmp_path: Path) -> None:
    (tmp_path / "users").write_text(f"alice:{generate('BLF-CRYPT', 'secret', rounds=9)}\n")
    auth = make_auth(f"auth_failure_delay = 0\npassdb {{\n driver = passwd-file\n"
                     f" args = {tmp_path}/users\n}}\n")
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)
    task = asyncio.create_task(ticker())
    assert (await auth.verify_plain("alice", "secret", LOCAL)).ok
    done = True
    await task
    assert ticks > 1  # the loop kept running while bcrypt worked


async def test_require_client_cert(make_auth: Make, files: Path) -> None:
    auth = make_auth(tutorial(files, "auth_ssl_require_client_cert = yes"))
    assert (await auth.verify_plain("bob", "secret", LOCAL)).status is AuthStatus.FAIL
    with_cert = ClientInfo(protocol="imap", remote_ip="127.0.0.1", secured=True, cert_username="bob")
    assert (await auth.verify_plain("bob", "secret", with_cert)).ok


async def test_filters_apply_per_client(make_auth: Make, files: Path) -> None:
    auth = make_auth(tutorial(files, """
remote 192.0.2.0/24 {
  disable_plaintext_auth = no
}
protocol pop3 {
  auth_mechanisms = plain
}
"""))
    assert auth.plaintext_allowed(REMOTE)  # 192.0.2.10 is inside the remote block
    other = ClientInfo(protocol="imap", remote_ip="198.51.100.1", local_ip="192.0.2.1")
    assert not auth.plaintext_allowed(other)
    pop3 = ClientInfo(protocol="pop3", remote_ip="127.0.0.1", local_ip="127.0.0.1")
    assert auth.mechanisms(pop3) == ["PLAIN"]
    assert "CRAM-MD5" in auth.mechanisms(LOCAL)


async def test_passdb_fields_rename_and_feed_userdb_templates(make_auth: Make, tmp_path: Path) -> None:
    (tmp_path / "users").write_text("Joe@Example.org:{PLAIN}pw::::::user=joe@example.org quota=2G\n"
                                    "ann:{PLAIN}pw::::::domain=example.net\n")
    auth = make_auth(f"""
auth_failure_delay = 0
auth_username_format = %u
passdb {{
  driver = passwd-file
  args = {tmp_path}/users
}}
userdb {{
  driver = static
  args = uid=5000 gid=5000 home=/srv/%d/%n quota_rule=*:storage=%{{passdb:quota}} allow_all_users=yes
}}
""")
    r = await auth.verify_plain("Joe@Example.org", "pw", LOCAL)
    assert r.ok and r.username == "joe@example.org"
    assert r.user is not None and r.user.home == "/srv/example.org/joe"
    assert r.user.extra["quota_rule"] == "*:storage=2G"
    r = await auth.verify_plain("ann", "pw", LOCAL)
    assert r.ok and r.username == "ann@example.net"


async def test_static_without_password_is_a_mismatch(make_auth: Make) -> None:
    auth = make_auth("auth_failure_delay = 0\npassdb {\n driver = static\n args = uid=1\n}\n")
    assert (await auth.verify_plain("a", "b", LOCAL)).status is AuthStatus.FAIL


async def test_fifty_concurrent_bcrypt_logins_keep_the_loop_free(make_auth: Make, tmp_path: Path) -> None:
    (tmp_path / "users").write_text(f"alice:{generate('BLF-CRYPT', 'secret', rounds=6)}\n")
    auth = make_auth(f"auth_failure_delay = 0\npassdb {{\n driver = passwd-file\n"
                     f" args = {tmp_path}/users\n}}\n")
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0.001)
    task = asyncio.create_task(ticker())
    results = await asyncio.gather(*(auth.verify_plain("alice", "secret" if i % 2 else "bad", LOCAL)
                                     for i in range(50)))
    done = True
    await task
    assert [r.ok for r in results] == [bool(i % 2) for i in range(50)]
    assert ticks >= 5  # the loop kept serving other work meanwhile


def test_passwd_file_cache_serves_several_event_loops(make_auth: Make, tmp_path: Path) -> None:
    """The passwd-file cache is per process; contended lookups from a second
    event loop (a server thread of its own) must not trip over a lock bound
    to the first one."""
    (tmp_path / "users").write_text("alice:{PLAIN}secret\n")
    text = f"auth_failure_delay = 0\npassdb {{\n driver = passwd-file\n args = {tmp_path}/users\n}}\n"

    async def contended() -> list[bool]:
        auth = make_auth(text)
        results = await asyncio.gather(*(auth.verify_plain("alice", "secret", LOCAL) for _ in range(8)))
        return [r.ok for r in results]

    for _ in range(2):
        users = tmp_path / "users"
        users.write_text(users.read_text() + "#\n")  # changed on disk: every loop re-reads
        assert asyncio.run(contended()) == [True] * 8
