"""`service lmtp { unix_listener NAME { mode user group } }` in the real
daemon: the socket gets Dovecot's owner and mode (checked against Dovecot
2.3.19: `mode = 0600, user = postfix, group = postdrop` -> srw------- postfix
postdrop), a delivery over it shows up over IMAP, and an unknown user or
group is fatal with Dovecot's text."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import smtplib
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon.conftest import (
    PASSWORD,
    free_port,
    server_command,
    start_daemon,
    write_config,
)
from tests.integration.daemon.pki import TestCA, make_ca
from tests.support.tmp import reachable_tmp_dir


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


def _owner() -> tuple[str, str]:
    """A user and group other than ours to hand the socket to (root only)."""
    for user, group in (("postfix", "postdrop"), ("nobody", "nogroup")):
        try:
            pwd.getpwnam(user)
            grp.getgrnam(group)
        except KeyError:
            continue
        return user, group
    pytest.skip("no system user/group to own the socket")


def _lmtp_config(home: Path, ca: TestCA, ports: dict[str, int], listener: str) -> Path:
    config = write_config(home, ca, ports, extra=f"service lmtp {{\n{listener}}}\n")
    config.write_text(config.read_text().replace("protocols = imap pop3",
                                                 "protocols = imap pop3 lmtp"))
    return config


@pytest.fixture
def open_home() -> Iterator[Path]:
    """A home the mail user (uid 65534 under root) can reach: deliveries
    run as the user, as in Dovecot, and pytest's tmp_path is 0700 root."""
    with reachable_tmp_dir("maa-lmtp-") as home:
        yield home


@pytest.mark.skipif(os.geteuid() != 0, reason="chown of the socket needs root")
def test_socket_mode_user_group_and_delivery(open_home: Path, ca: TestCA) -> None:
    user, group = _owner()
    tmp_path = open_home
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    config = _lmtp_config(tmp_path, ca, ports,
                          f"  unix_listener dovecot-lmtp {{\n    mode = 0600\n    user = {user}\n"
                          f"    group = {group}\n  }}\n")
    # alice's home belongs to her (uid/gid of the users file), as a real site's
    mail_uid, mail_gid = (int(x) for x in (tmp_path / "users").read_text().split(":")[2:4])
    (tmp_path / "mail" / "alice").mkdir()
    os.chown(tmp_path / "mail" / "alice", mail_uid, mail_gid)
    daemon = start_daemon(tmp_path, config, ports)
    try:
        path = tmp_path / "run" / "dovecot-lmtp"
        st = path.stat()
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert (st.st_uid, st.st_gid) == (pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)

        client = smtplib.LMTP(str(path))
        client.docmd("LHLO", "mx.example.org")
        assert client.docmd("MAIL", "FROM:<sender@example.org>")[0] == 250
        assert client.docmd("RCPT", "TO:<alice>") == (250, b"2.1.5 OK")
        assert client.docmd("RCPT", "TO:<nosuchuser>")[0] == 550
        code, _ = client.docmd("DATA")
        assert code == 354
        client.send(b"Subject: over the socket\r\n\r\n8-bit \xc3\xa9\r\n.\r\n")
        code, text = client.getreply()
        assert code == 250 and text.startswith(b"2.0.0 <alice> "), (text, daemon.log_text())
        client.quit()

        with imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10) as imap:
            imap.login("alice", PASSWORD)
            typ, data = imap.select("INBOX")
            assert (typ, data) == ("OK", [b"1"])
            _, fetched = imap.fetch("1", "(BODY.PEEK[])")
            stored = fetched[0][1]
            assert stored.startswith(b"Return-Path: <sender@example.org>\r\nDelivered-To: alice\r\n")
            assert stored.endswith(b"\r\n\r\n8-bit \xc3\xa9\r\n")
    finally:
        assert daemon.stop() == 0
        daemon.notify.close()


@pytest.mark.parametrize(("setting", "message"), [
    ("user = nosuchuserx", ("service(lmtp) User doesn't exist: nosuchuserx (See service lmtp "
                           "{ unix_listener %s { user } } setting)")),
    ("group = nosuchgroupx", ("service(lmtp) Group doesn't exist: nosuchgroupx (See service lmtp "
                             "{ unix_listener %s { group } } setting)")),
])
def test_unknown_socket_owner_is_fatal(tmp_path: Path, ca: TestCA, setting: str, message: str) -> None:
    import subprocess

    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    config = _lmtp_config(tmp_path, ca, ports, f"  unix_listener other {{\n    {setting}\n  }}\n")
    done = subprocess.run(server_command("-F", "-c", str(config)), capture_output=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode != 0
    output = done.stdout.decode() + done.stderr.decode()
    log = tmp_path / "maa.log"
    output += log.read_text() if log.exists() else ""
    assert message % (tmp_path / "run" / "other") in output, output
