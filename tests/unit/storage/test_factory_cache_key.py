"""The per-process store cache is keyed by the resolved location, not the user
name: the same name from two userdbs, or a home changed by a config/userdb
reload, must not get the other Maildir's store."""

from __future__ import annotations

from pathlib import Path

import pytest

from maa_server.auth.interface import UserInfo
from maa_server.config import parse_config_text
from maa_server.storage.factory import forget_stores, open_mail_store, store_key

MSG = b"From: a@example.org\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n"
CONFIG = "mail_location = maildir:~/Maildir\n"


@pytest.fixture(autouse=True)
def _fresh_stores():
    forget_stores()
    yield
    forget_stores()


async def _inbox_count(store) -> int:
    box = await store.open_mailbox("INBOX")
    await box.sync()
    return len(box.messages())


async def test_same_name_other_home_gets_its_own_store(tmp_path: Path) -> None:
    cfg = parse_config_text(CONFIG)
    first = UserInfo("alice", uid=5000, gid=5000, home=str(tmp_path / "a"))
    second = UserInfo("alice", uid=5000, gid=5000, home=str(tmp_path / "b"))
    store_a = await open_mail_store(cfg, first)
    store_b = await open_mail_store(cfg, second)
    assert store_a is not store_b
    box = await store_a.open_mailbox("INBOX")
    await box.append(MSG)
    assert await _inbox_count(store_a) == 1
    assert await _inbox_count(store_b) == 0
    assert (tmp_path / "b" / "Maildir" / "cur").is_dir()
    assert not list((tmp_path / "b" / "Maildir" / "new").iterdir())
    # The same user and home again: the cached store.
    assert await open_mail_store(cfg, UserInfo("alice", uid=5000, gid=5000,
                                               home=str(tmp_path / "a"))) is store_a


async def test_home_changed_by_reload_is_a_new_store(tmp_path: Path) -> None:
    cfg = parse_config_text(CONFIG)
    before = await open_mail_store(cfg, UserInfo("bob", home=str(tmp_path / "old")))
    after = await open_mail_store(cfg, UserInfo("bob", home=str(tmp_path / "new")))
    assert before is not after
    assert (tmp_path / "new" / "Maildir" / "cur").is_dir()


async def test_changed_mail_location_is_a_new_store(tmp_path: Path) -> None:
    user = UserInfo("bob", home=str(tmp_path))
    first = await open_mail_store(parse_config_text(CONFIG), user)
    second = await open_mail_store(
        parse_config_text("mail_location = maildir:~/Mail:LAYOUT=fs\n"), user)
    assert first is not second and second.separator == "/"
    assert (tmp_path / "Mail" / "cur").is_dir()


def test_key_depends_on_uid_location_and_settings(tmp_path: Path) -> None:
    cfg = parse_config_text(CONFIG)
    base = UserInfo("carol", uid=5000, gid=5000, home=str(tmp_path))
    key = store_key(cfg, base)
    assert key.location.root == str(tmp_path / "Maildir")
    assert store_key(cfg, UserInfo("carol", uid=5000, gid=5000, home=str(tmp_path))) == key
    assert store_key(cfg, UserInfo("carol", uid=5001, gid=5000, home=str(tmp_path))) != key
    assert store_key(cfg, UserInfo("carol", uid=5000, gid=5000, home=str(tmp_path),
                                   mail=f"maildir:{tmp_path}/other")) != key
    assert store_key(parse_config_text(CONFIG + "mail_fsync = always\n"), base) != key
    # The same %-template resolves per user.
    template = parse_config_text(f"mail_location = maildir:{tmp_path}/%u\n")
    assert store_key(template, UserInfo("dave")).location.root == str(tmp_path / "dave")
    assert store_key(template, UserInfo("erin")).location.root == str(tmp_path / "erin")
