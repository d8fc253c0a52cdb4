"""Interoperability with the real Dovecot managesieve (Pigeonhole 0.5) on
the same homes: scripts one server stores, the other lists, returns and
runs; and the same commands get the same answers from both servers.

Needs root (Dovecot runs the user as `nobody`, as a real install would run
it as the mail user) and Debian's dovecot-managesieved."""

from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pop3.maa_pop3_harness import PASSWORD
from tests.integration.sieve.client import RawSieve
from tests.integration.sieve.harness import SieveStack, message

DOVECOT = "/usr/sbin/dovecot"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(DOVECOT) and os.path.exists("/usr/lib/dovecot/managesieve") and os.geteuid() == 0),
    reason="needs root and Dovecot's managesieve (dovecot-managesieved)")

PLUGIN = """  sieve_quota_max_scripts = 3
  sieve_quota_max_storage = 2k
  sieve_max_script_size = 1k
"""

DOVECOT_CONF = """
base_dir = {root}/dovecot-run
state_dir = {root}/dovecot-state
log_path = {root}/dovecot.log
protocols = sieve lmtp
listen = 127.0.0.1
sendmail_path = {root}/sendmail.sh
ssl = no
auth_mechanisms = plain login
disable_plaintext_auth = no
auth_username_format = %Ln
mail_location = maildir:~/Maildir
default_internal_user = nobody
default_login_user = nobody
first_valid_uid = 1
login_greeting = Dovecot (Debian) ready.
passdb {{
  driver = passwd-file
  args = {root}/dovecot-users
}}
userdb {{
  driver = passwd-file
  args = {root}/dovecot-users
}}
service managesieve-login {{
  inet_listener sieve {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
protocol lmtp {{
  mail_plugins = sieve
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
{plugin}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise RuntimeError("dovecot exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("dovecot did not listen")


class Both:
    """Our stack and a real Dovecot serving the same homes."""

    def __init__(self, stack: SieveStack, dovecot_port: int, lmtp_port: int) -> None:
        self.stack = stack
        self.dovecot_port = dovecot_port
        self.lmtp_port = lmtp_port
        self.nobody = pwd.getpwnam("nobody")

    def give_homes_to_nobody(self) -> None:
        # The per-user process writes as the mail user; our test server runs
        # as root, so hand the files over as that process would own them.
        for dirpath, dirnames, filenames in os.walk(self.stack.root / "home"):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, self.nobody.pw_uid, self.nobody.pw_gid)

    def ours(self) -> RawSieve:
        client = RawSieve(self.stack.sieve_port)
        assert client.login(password=PASSWORD) == b'OK "Logged in."\r\n'
        return client

    def theirs(self) -> RawSieve:
        self.give_homes_to_nobody()
        client = RawSieve(self.dovecot_port)
        assert client.login(password=PASSWORD) == b'OK "Logged in."\r\n'
        return client


@pytest.fixture
def both() -> Iterator[Both]:
    root = Path(tempfile.mkdtemp(prefix="maa-sieve-interop-", dir="/tmp"))
    root.chmod(0o755)  # Dovecot's user processes (nobody) walk into the homes
    stack = SieveStack(root, plugin=PLUGIN)
    nobody = pwd.getpwnam("nobody")
    (root / "dovecot-users").write_text("".join(
        f"{u}:{{PLAIN}}{PASSWORD}:{nobody.pw_uid}:{nobody.pw_gid}::{root}/home/{u}::\n" for u in ("alice", "bob")))
    (root / "home").chmod(0o755)
    port, lmtp_port = free_port(), free_port()
    conf = root / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(root=root, port=port, lmtp_port=lmtp_port, plugin=PLUGIN))
    stack.outbox.chmod(0o777)  # Dovecot's sendmail runs as the mail user
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        stack.start()
        yield Both(stack, port, lmtp_port)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_scripts_we_store_dovecot_sees_and_back(both: Both) -> None:
    mine = b'require ["fileinto", "mailbox"];\r\nfileinto :create "Mine";\r\n'
    ours = both.ours()
    assert ours.cmd(b'PUTSCRIPT "mine" {%d+}\r\n%s\r\n' % (len(mine), mine)) == b'OK "PUTSCRIPT completed."\r\n'
    assert ours.cmd('SETACTIVE "mine"') == b'OK "Setactive completed."\r\n'
    ours.close()

    theirs = both.theirs()
    assert theirs.cmd("LISTSCRIPTS") == b'"mine" ACTIVE\r\nOK "Listscripts completed."\r\n'
    assert theirs.cmd('GETSCRIPT "mine"') == b"{%d}\r\n%s\r\nOK \"Getscript completed.\"\r\n" % (len(mine), mine)
    other = b'require ["fileinto", "mailbox"];\r\nfileinto :create "Theirs";\r\n'
    assert theirs.cmd(b'PUTSCRIPT "theirs" {%d+}\r\n%s\r\n' % (len(other), other)) == \
        b'OK "PUTSCRIPT completed."\r\n'
    assert theirs.cmd('SETACTIVE "theirs"') == b'OK "Setactive completed."\r\n'
    theirs.close()

    ours = both.ours()
    listing = ours.cmd("LISTSCRIPTS")
    assert sorted(listing.split(b"\r\n")[:-2]) == [b'"mine"', b'"theirs" ACTIVE']
    assert ours.cmd('GETSCRIPT "theirs"') == b"{%d}\r\n%s\r\nOK \"Getscript completed.\"\r\n" % (len(other), other)
    ours.close()
    both.stack.lmtp_send(message(1))
    assert len(both.stack.folder("alice", "Theirs")) == 1


# Commands whose answers must be byte-identical from both servers.
SAME_ANSWERS = [
    'GETSCRIPT "nope"', 'DELETESCRIPT "nope"', 'SETACTIVE "nope"', 'RENAMESCRIPT "nope" "x"',
    'PUTSCRIPT "a" "keep;"', 'PUTSCRIPT "b" "discard;"', 'RENAMESCRIPT "a" "b"', 'SETACTIVE "a"',
    'DELETESCRIPT "a"', "LISTSCRIPTS", 'HAVESPACE "c" 5000', 'HAVESPACE "c" 100', 'HAVESPACE "c" "x"',
    'CHECKSCRIPT "keep;"', 'CHECKSCRIPT "if true {"', 'PUTSCRIPT "bad" "require \\"nope\\"; frob;"',
    'PUTSCRIPT "x/y" "keep;"', 'PUTSCRIPT "c" "keep;"', 'PUTSCRIPT "d" "keep;"', 'NOOP "tag"', "NOOP",
    'NOOP "a" "b"', "GETSCRIPT", "FOO", 'SETACTIVE ""', 'SETACTIVE ""', 'GETSCRIPT "a"',
]


def test_same_answers_as_dovecot(both: Both) -> None:
    ours = both.ours()
    answers_ours = [ours.cmd(c) for c in SAME_ANSWERS]
    ours.close()
    shutil.rmtree(both.stack.home("alice") / "sieve")
    (both.stack.home("alice") / ".dovecot.sieve").unlink(missing_ok=True)
    theirs = both.theirs()
    answers_theirs = [theirs.cmd(c) for c in SAME_ANSWERS]
    theirs.close()
    assert answers_theirs[0] == b'NO (NONEXISTENT) "Sieve script `nope\' not found"\r\n'
    for command, a, b in zip(SAME_ANSWERS, answers_ours, answers_theirs):
        assert (command, a) == (command, b)


def test_greeting_shape_matches(both: Both) -> None:
    ours, theirs = RawSieve(both.stack.sieve_port), RawSieve(both.dovecot_port)
    mine = dict(_capabilities(ours.greeting))
    real = dict(_capabilities(theirs.greeting))
    assert mine["IMPLEMENTATION"] == real["IMPLEMENTATION"] == '"Dovecot (Debian) Pigeonhole"'
    assert mine["VERSION"] == real["VERSION"] == '"1.0"'
    assert mine["SASL"] == real["SASL"]
    assert mine["NOTIFY"] == real["NOTIFY"] == '"mailto"'
    # the same lines in the same order (ours has TLS configured, that Dovecot not)
    assert [k for k in mine if k != "STARTTLS"] == list(real)
    assert mine["SIEVE"] == real["SIEVE"]  # the same extensions, in the same order
    assert ours.greeting.splitlines()[-1] == theirs.greeting.splitlines()[-1]


def _capabilities(greeting: bytes) -> list[tuple[str, str]]:
    out = []
    for line in greeting.decode().splitlines()[:-1]:
        key, _, value = line.partition(" ")
        out.append((key.strip('"'), value))
    return out


def test_vacation_memory_is_shared_with_dovecot(both: Both) -> None:
    """We answer once; Dovecot, delivering the next mail of the same sender
    into the same home, finds our record in ~/.dovecot.lda-dupes."""
    both.stack.set_script("alice", 'require "vacation";\nvacation :days 2 "I am away";\n')
    both.stack.lmtp_send(message(1))
    assert len(both.stack.sent()) == 1
    assert (both.stack.home("alice") / ".dovecot.lda-dupes").exists()
    both.give_homes_to_nobody()
    with smtplib.LMTP("127.0.0.1", both.lmtp_port) as client:
        assert client.sendmail("sender@example.org", ["alice"], message(2)) == {}
    log = (both.stack.root / "dovecot.log").read_text()
    assert "sieve: msgid=<m2@example.org>: vacation action: discarded duplicate vacation response " \
           "to <sender@example.org>" in log
    assert len(both.stack.sent()) == 1
