"""maa-adm pw / auth test / auth lookup / user print what doveadm prints.

Expected texts for auth/user were captured from doveadm 2.3 against the same
passwd-file (see the shapes in the comments); `pw` is compared live with the
real doveadm when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from maa_server.cli.adm import main

DOVEADM = shutil.which("doveadm")
USERS = """\
alice:{PLAIN}secret:5000:5000::/var/vmail/alice::userdb_mail=maildir:~/Maildir
bob:{PLAIN}secret:5001:5000::/var/vmail/bob::
carol:{PLAIN}secret:5002:5000::/var/vmail/carol::userdb_mail=maildir:~/M userdb_quota_rule=*:storage=1G foo=bar nodelay
gina:{PLAIN}secret:5007:5000::/h::nodelay=no proxy=y host=1.2.3.4 nopassword=x foo= nologin=y
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def doveadm(*argv: str) -> tuple[int, str, str]:
    assert DOVEADM
    done = subprocess.run([DOVEADM, *argv], capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def conf(tmp_path: Path) -> str:
    (tmp_path / "users").write_text(USERS)
    (tmp_path / "masters").write_text("admin:{PLAIN}masterpw\n")
    path = tmp_path / "maa.conf"
    path.write_text(f"""
auth_failure_delay = 0
auth_master_user_separator = *
passdb {{
  driver = passwd-file
  master = yes
  pass = yes
  args = {tmp_path}/masters
}}
first_valid_uid = 1000
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=CRYPT {tmp_path}/users
}}
userdb {{
  driver = passwd-file
  args = {tmp_path}/users
}}
""")
    return str(path)


def test_auth_test(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    assert run(capsys, "-c", conf, "auth", "test", "carol", "secret") == (
        0, "passdb: carol auth succeeded\nextra fields:\n  user=carol\n  foo=bar\n  nodelay\n", "")
    # only userdb_* extra fields: doveadm shows one empty field
    assert run(capsys, "-c", conf, "auth", "test", "alice", "secret")[1] == \
        "passdb: alice auth succeeded\nextra fields:\n  user=alice\n  \n"
    assert run(capsys, "-c", conf, "auth", "test", "alice", "bad") == (
        77, "passdb: alice auth failed\nextra fields:\n  user=alice\n", "")


def test_auth_test_fields_and_master_users(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    # all captured from doveadm 2.3.19 with the same files
    assert run(capsys, "-c", conf, "auth", "test", "gina", "secret")[1] == (
        "passdb: gina auth succeeded\nextra fields:\n  user=gina\n  nodelay=no\n  proxy\n"
        "  host=1.2.3.4\n  foo\n  nologin\n")
    # nopassword with a non-empty password is ignored (and logged as an error)
    code, out, err = run(capsys, "-c", conf, "auth", "test", "gina", "wrong")
    assert (code, out) == (77, "passdb: gina auth failed\nextra fields:\n  user=gina\n")
    assert "nopassword set but password is non-empty" in err
    ok = "passdb: {} auth succeeded\nextra fields:\n  user=bob\n  original_user=admin\n  auth_user=admin\n"
    assert run(capsys, "-c", conf, "auth", "test", "-M", "admin", "bob", "masterpw")[1] == ok.format("bob")
    assert run(capsys, "-c", conf, "auth", "test", "bob*admin", "masterpw")[1] == ok.format("bob*admin")
    assert run(capsys, "-c", conf, "auth", "test", "bob*admin", "bad")[1] == \
        "passdb: bob*admin auth failed\nextra fields:\n  user=admin\n"
    assert run(capsys, "-c", conf, "auth", "test", "nobody*admin", "masterpw")[1] == (
        "passdb: nobody*admin auth failed\nextra fields:\n  user=nobody\n  code=authz_fail\n"
        "  original_user=admin\n  auth_user=admin\n")


def test_auth_lookup(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    assert run(capsys, "-c", conf, "auth", "lookup", "carol") == (
        0, "passdb: carol\n  user      : carol\n  foo       : bar\n  nodelay   \n", "")
    assert run(capsys, "-c", conf, "auth", "lookup", "nobody") == (
        67, "passdb lookup: user nobody doesn't exist\n", "")


def test_user(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    assert run(capsys, "-c", conf, "user", "carol") == (
        0, ("field\tvalue\nuid\t5002\ngid\t5000\nhome\t/var/vmail/carol\nmail\tmaildir:~/M\n"
            "quota_rule\t*:storage=1G\n"), "")
    assert run(capsys, "-c", conf, "user", "bob")[1] == \
        "field\tvalue\nuid\t5001\ngid\t5000\nhome\t/var/vmail/bob\nmail\tmaildir:~/Maildir\n"
    assert run(capsys, "-c", conf, "user", "nobody") == (
        67, "field\tvalue\n\nuserdb lookup: user nobody doesn't exist\n", "")
    assert run(capsys, "-c", conf, "user", "-f", "home", "alice")[1] == "/var/vmail/alice\n"


def test_pw_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "pw", "-t", "{PLAIN}secret", "-p", "x") == (
        75, "", "Fatal: reverse password verification check failed: Password mismatch\n")
    assert run(capsys, "pw", "-t", "secret", "-p", "x") == (
        75, "", "Fatal: Missing {scheme} prefix from hash\n")
    assert run(capsys, "pw", "-t", "{FOO}x", "-p", "x") == (
        75, "", "Fatal: reverse decode check failed: Unknown scheme\n")
    assert run(capsys, "pw", "-s", "foo", "-p", "x") == (75, "", "Fatal: Unknown scheme: FOO\n")
    assert run(capsys, "pw", "-s", "DIGEST-MD5", "-p", "x") == (
        75, "", "Fatal: digest_md5_generate(): username not given\n")


def test_pw_asks_twice(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["secret", "secret", "a", "b"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, out, _ = run(capsys, "pw", "-s", "PLAIN")
    assert (code, out) == (0, "{PLAIN}secret\n")
    assert run(capsys, "pw", "-s", "PLAIN") == (75, "", "Fatal: Passwords don't match!\n")


@pytest.mark.skipif(DOVEADM is None, reason="doveadm not installed")
@pytest.mark.parametrize("argv", [
    ["pw", "-l"],
    ["pw", "-s", "PLAIN", "-p", "secret"],
    ["pw", "-s", "sha256.hex", "-p", "secret", "-V"],
    ["pw", "-s", "plain-md5", "-p", "secret"],
    ["pw", "-s", "CRAM-MD5", "-p", "secret"],
    ["pw", "-s", "DIGEST-MD5", "-u", "alice@example.com", "-p", "secret"],
    ["pw", "-s", "PLAIN-TRUNC", "-p", "secret"],
    ["pw", "-t", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "-p", "secret"],
    ["pw", "-t", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "-p", "wrong"],
    ["pw", "-t", "nobraces", "-p", "secret"],
    ["pw", "-t", "{NOPE}x", "-p", "secret"],
    ["pw", "-s", "nope", "-p", "secret"],
])
def test_pw_same_as_doveadm(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert run(capsys, *argv) == doveadm(*argv)


@pytest.mark.skipif(DOVEADM is None, reason="doveadm not installed")
@pytest.mark.parametrize("scheme", ["CRYPT", "SHA512-CRYPT", "SSHA256", "PBKDF2", "SCRAM-SHA-256"])
def test_pw_salted_output_verifies_with_doveadm(capsys: pytest.CaptureFixture[str], scheme: str) -> None:
    code, out, _ = run(capsys, "pw", "-s", scheme, "-p", "secret")
    assert code == 0
    assert doveadm("pw", "-t", out.strip(), "-p", "secret")[0] == 0
