"""End to end: scripts uploaded with the `sievelib` ManageSieve client
decide where LMTP deliveries go; the same through maa-lda."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sievelib.managesieve import Client

from tests.integration.pop3.maa_pop3_harness import PASSWORD
from tests.integration.sieve.harness import SieveStack, message, sieve_log
from tests.support.tmp import reachable_tmp_dir

FILTER = """require ["fileinto", "mailbox", "variables"];
if header :matches "subject" "[*] *" {
    set :lower "list" "${1}";
    fileinto :create "Lists.${list}";
    stop;
}
"""


@pytest.fixture(autouse=True)
def trust_test_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # sievelib verifies the server certificate: trust the stack's self-signed one.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))


def upload(stack: SieveStack, name: str, script: str, activate: bool = True) -> Client:
    client = Client("127.0.0.1", stack.sieve_port, srvhostname="localhost")
    assert client.connect("alice", PASSWORD, starttls=True, authmech="PLAIN")
    assert "fileinto" in client.get_sieve_capabilities()
    assert client.havespace(name, len(script))
    assert client.putscript(name, script)
    if activate:
        assert client.setactive(name)
    return client


def test_uploaded_script_files_deliveries(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    client = upload(stack, "lists", FILTER)
    active, others = client.listscripts()
    assert active == "lists" and others == []
    assert client.getscript("lists") == FILTER.rstrip("\n")  # sievelib drops the last line end
    client.logout()
    stack.lmtp_send(message(1, subject="[Python-Dev] release"))
    stack.lmtp_send(message(2, subject="hello"))
    assert [b"body 1" in m for m in stack.folder("alice", "Lists.python-dev")] == [True]
    assert [b"body 2" in m for m in stack.folder("alice", "INBOX")] == [True]
    assert "Info: sieve: msgid=<m1@example.org>: fileinto action: stored mail into mailbox " \
           "'Lists.python-dev'" in sieve_log(caplog)


def test_broken_upload_is_refused_and_old_script_still_runs(stack: SieveStack) -> None:
    client = upload(stack, "lists", FILTER)
    assert not client.putscript("lists", 'require "fileinto"; fileinto "x"')
    assert "parse failed" in str(client.errmsg)
    client.logout()
    stack.lmtp_send(message(3, subject="[a] b"))
    assert len(stack.folder("alice", "Lists.a")) == 1


def test_script_broken_on_disk_keeps_the_message(stack: SieveStack) -> None:
    upload(stack, "lists", FILTER).logout()
    (stack.home("alice") / "sieve" / "lists.sieve").write_text("if true {\n")
    stack.lmtp_send(message(4, subject="[a] b"))
    assert len(stack.folder("alice", "INBOX")) == 1


def test_vacation_once_per_sender_per_period(stack: SieveStack) -> None:
    upload(stack, "away", 'require "vacation";\nvacation :days 3 :subject "Away" "Back on Monday.";\n').logout()
    for n in range(3):
        stack.lmtp_send(message(10 + n))
    stack.lmtp_send(message(20, sender="carol@example.net"), mail_from="carol@example.net")
    assert [args for args, _ in stack.sent()] == ["-i -f <> -- sender@example.org",
                                                  "-i -f <> -- carol@example.net"]
    assert len(stack.folder("alice", "INBOX")) == 4
    assert b"\nSubject: Away\n" in stack.sent()[0][1]


def test_deactivated_script_no_longer_runs(stack: SieveStack) -> None:
    client = upload(stack, "drop", "discard;\n")
    assert client.setactive("")
    client.logout()
    stack.lmtp_send(message(5))
    assert len(stack.folder("alice", "INBOX")) == 1


# --- maa-lda ---------------------------------------------------------------

@pytest.fixture
def lda_root(tmp_path: Path) -> Iterator[Path]:
    """Under root, a 0755 directory in /tmp instead of pytest's 0700 one:
    the mail user maa-lda becomes must reach the homes and the outbox."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    with reachable_tmp_dir("maa-sieve-lda-") as root:
        yield root


def lda_stack(root: Path, **kwargs: str) -> SieveStack:
    """maa-lda drops to the userdb uid/gid (as dovecot-lda): under root the
    users are nobody's, and the homes and the sendmail outbox theirs."""
    if os.geteuid() != 0:
        return SieveStack(root, **kwargs)
    nobody = pwd.getpwnam("nobody")
    stack = SieveStack(root, uid=nobody.pw_uid, gid=nobody.pw_gid, **kwargs)
    stack.outbox.chmod(0o777)
    return stack


def run_lda(stack: SieveStack, *args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for dirpath, dirnames, filenames in os.walk(stack.root / "home"):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, nobody.pw_uid, nobody.pw_gid)
    return subprocess.run([sys.executable, "-m", "maa_server.cli.lda", "-c", str(stack.config_path), *args],
                          input=stdin, capture_output=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])})


def test_lda_runs_the_same_sieve(lda_root: Path) -> None:
    stack = lda_stack(lda_root)  # config and users only
    stack.set_script("alice", 'require ["fileinto", "mailbox"];\nfileinto :create "Work";\n')
    result = run_lda(stack, "-d", "alice", "-f", "sender@example.org", stdin=message(1).replace(b"\r\n", b"\n"))
    assert result.returncode == 0, result.stderr
    assert len(stack.folder("alice", "Work")) == 1
    assert b"lda(alice)<" in result.stderr
    assert b"sieve: msgid=<m1@example.org>: fileinto action: stored mail into mailbox 'Work'" in result.stderr


def test_lda_reject_with_e_exits_77(lda_root: Path) -> None:
    stack = lda_stack(lda_root)
    stack.set_script("alice", 'require "reject";\nreject "not here";\n')
    result = run_lda(stack, "-d", "alice", "-f", "sender@example.org", "-e", stdin=message(2))
    assert result.returncode == 77
    assert b"not here" in result.stderr
    assert stack.sent() == [] and stack.folder("alice", "INBOX") == []


def test_lda_keep_goes_to_the_m_mailbox(lda_root: Path) -> None:
    stack = lda_stack(lda_root, extra_config="lda_mailbox_autocreate = yes\n")
    stack.set_script("alice", "keep;\n")
    result = run_lda(stack, "-d", "alice", "-m", "Archive", stdin=message(3))
    assert result.returncode == 0, result.stderr
    assert len(stack.folder("alice", "Archive")) == 1
