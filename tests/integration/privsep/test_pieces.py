"""The privilege-separation pieces that need no root: the channel, the
worker's config copy, Dovecot's uid checks."""

from __future__ import annotations

import asyncio
import os
import pickle

from maa_server.auth.interface import UserInfo
from maa_server.auth.mail_access import mail_access_refusal, uid_refusal
from maa_server.config import parse_config_text
from maa_server.daemon.privsep.channel import Channel, ChannelClosed, channel_pair
from maa_server.daemon.privsep.pool import credentials, scrubbed_config
from tests.support.config import passwd_file_databases

KEY = "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----"


def test_worker_config_has_no_private_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "k.pem").write_text(KEY)
    (tmp_path / "c.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIpublic\n-----END CERTIFICATE-----")
    cfg = parse_config_text(f"""\
mail_location = maildir:~/Maildir
ssl_cert = <{tmp_path}/c.pem
ssl_key = <{tmp_path}/k.pem
local_name mail.example.test {{
  ssl_key = <{tmp_path}/k.pem
}}
protocol imap {{
  mail_max_userip_connections = 3
}}
""", path=str(tmp_path / "x.conf"))
    blob = pickle.dumps(scrubbed_config(cfg))
    assert b"MIIsecret" in pickle.dumps(cfg)
    assert b"MIIsecret" not in blob
    copy = pickle.loads(blob)
    assert copy.get("ssl_key") == "" and copy.get("ssl_key", local_name="mail.example.test") == ""
    assert copy.get("mail_location") == "maildir:~/Maildir"
    assert copy.get("mail_max_userip_connections", protocol="imap") == 3
    assert "MIIpublic" in copy.get("ssl_cert")
    assert cfg.get("ssl_key").startswith("-----BEGIN")  # the master's own is untouched


def test_uid_checks_are_dovecots() -> None:
    cfg = parse_config_text("first_valid_uid = 1000\nlast_valid_uid = 2000\nfirst_valid_gid = 10\n")
    assert uid_refusal(UserInfo("u", uid=1500, gid=100), cfg) == ""
    assert uid_refusal(UserInfo("u", uid=0, gid=0), cfg) == (
        "Mail access for users with UID 0 not permitted (see first_valid_uid in config file, "
        "uid from userdb lookup).")
    assert "UID 2001 not permitted" in uid_refusal(UserInfo("u", uid=2001, gid=100), cfg)
    assert "GID 5 not permitted" in uid_refusal(UserInfo("u", uid=1500, gid=5), cfg)
    assert uid_refusal(UserInfo("u"), cfg) == \
        "Couldn't drop privileges: User is missing UID (see mail_uid setting)"
    uid, gid, groups = credentials(UserInfo("u", uid=1500, gid=1500), cfg)
    assert (uid, gid) == (1500, 1500) and groups[0] == 1500


def test_single_process_check_is_the_same_range_without_a_uid_requirement() -> None:
    cfg = parse_config_text("first_valid_uid = 1000\nlast_valid_uid = 2000\nfirst_valid_gid = 10\n")
    assert mail_access_refusal(UserInfo("u", uid=1500, gid=100), cfg) == ""
    assert mail_access_refusal(UserInfo("u", uid=100, gid=100), cfg) == (
        "Mail access for users with UID 100 not permitted (see first_valid_uid in config file, "
        "uid from userdb lookup).")
    assert "GID 5 not permitted" in mail_access_refusal(UserInfo("u", uid=1500, gid=5), cfg)
    # No uid from the userdb and no mail_uid: the process keeps its own, unchecked.
    assert mail_access_refusal(UserInfo("u"), cfg) == ""
    with_mail_uid = parse_config_text("first_valid_uid = 1000\nmail_uid = 50\n")
    assert "UID 50 not permitted" in mail_access_refusal(UserInfo("u"), with_mail_uid)
    assert mail_access_refusal(UserInfo("u", uid=1200), with_mail_uid) == ""


async def test_channel_carries_messages_and_descriptors_in_order() -> None:
    left, right = channel_pair()
    a, b = Channel(left), Channel(right)
    r, w = os.pipe()
    try:
        await a.send({"op": "one", "data": "x" * 200_000})
        await a.send({"op": "two"}, [w])
        first, fds1 = await b.recv()
        second, fds2 = await b.recv()
        assert (first["op"], len(first["data"]), fds1) == ("one", 200_000, [])
        assert second == {"op": "two"} and len(fds2) == 1
        os.write(fds2[0], b"through")
        os.close(fds2[0])
        assert os.read(r, 100) == b"through"
        a.close()
        try:
            await asyncio.wait_for(b.recv(), 5)
            raise AssertionError("EOF expected")
        except ChannelClosed:
            pass
    finally:
        os.close(r)
        os.close(w)
        b.close()


async def test_remote_authenticator_carries_plain_and_multi_step_sasl(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from maa_server.auth import build_authenticator
    from maa_server.auth.interface import AuthStatus, ClientInfo
    from maa_server.auth.remote import AuthService, RemoteAuthenticator

    users = tmp_path / "users"
    users.write_text(f"bob:{{PLAIN}}pw:1500:1500::{tmp_path}/bob::\n")
    cfg = parse_config_text(f"""\
auth_mechanisms = plain login cram-md5
disable_plaintext_auth = no
{passwd_file_databases(users)}""")
    service = AuthService(build_authenticator(cfg))
    seen: list[dict[str, object]] = []

    async def call(request: dict[str, object]) -> dict[str, object]:
        seen.append(request)
        # Through JSON, as over the channel.
        import json

        return json.loads(json.dumps(await service.handle(json.loads(json.dumps(request)))))

    remote = RemoteAuthenticator(build_authenticator(cfg), call)
    client = ClientInfo(protocol="imap", remote_ip="127.0.0.1", local_ip="127.0.0.1", secured=True)
    assert remote.mechanisms(client) == ["PLAIN", "LOGIN", "CRAM-MD5"]
    ok = await remote.verify_plain("bob", "pw", client)
    assert ok.status is AuthStatus.OK and ok.user is not None and ok.user.home == f"{tmp_path}/bob"
    assert all("password" not in str(r.get("client")) for r in seen)
    exchange = remote.start_sasl("LOGIN", client)
    assert exchange is not None
    step = await exchange.step(None)
    assert step.challenge is not None
    step = await exchange.step(b"bob")
    assert step.challenge is not None
    step = await exchange.step(b"pw")
    assert step.result is not None and step.result.ok and step.result.username == "bob"
    assert remote.start_sasl("NOSUCH", client) is None
    user = await remote.lookup_user("bob", client)
    assert user is not None and (user.uid, user.gid) == (1500, 1500)
    assert await remote.lookup_user("nobody-here", client) is None
    assert not service.exchanges  # finished exchanges are forgotten
