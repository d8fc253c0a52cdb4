"""open_mail_store from real configuration text; change notification between
sessions and processes; the structure cache; RENAME INBOX; Maildir++ shown
with a '/' namespace separator."""

from __future__ import annotations

import asyncio
import os

import pytest

from maa_server.auth.interface import UserInfo
from maa_server.config import parse_config_text
from maa_server.storage.factory import forget_stores, open_mail_store
from maa_server.storage.interface import InvalidMailboxName
from maa_server.storage.location import parse_mail_location
from maa_server.storage.maildir.store import MaildirStore

MSG = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n"

CONFIG = """
mail_location = maildir:~/Maildir:LAYOUT=fs
namespace inbox {
  inbox = yes
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
  mailbox "Sent Messages" {
    special_use = \\Sent
  }
}
"""


@pytest.fixture(autouse=True)
def _fresh_stores():
    forget_stores()
    yield
    forget_stores()


async def test_open_mail_store_from_config(tmp_path):
    cfg = parse_config_text(CONFIG)
    user = UserInfo("bob", home=str(tmp_path))
    store = await open_mail_store(cfg, user)
    assert await open_mail_store(cfg, user) is store  # one per user in the process
    assert store.separator == "/"
    entries = {e.name: e for e in await store.list_mailboxes()}
    assert list(entries) == ["INBOX", "Junk", "Sent"]
    assert entries["Sent"].special_use == {"\\Sent"} and entries["Sent"].subscribed
    assert entries["Junk"].attributes == {"\\HasNoChildren"}
    assert not (tmp_path / "Maildir" / "Sent").exists()  # created on first use
    await store.create_mailbox("Sent Messages")
    entries = {e.name: e for e in await store.list_mailboxes()}
    assert entries["Sent Messages"].special_use == {"\\Sent"}
    assert (tmp_path / "Maildir" / "cur").is_dir()  # INBOX made at login


async def test_userdb_mail_overrides_location(tmp_path):
    cfg = parse_config_text(CONFIG)
    user = UserInfo("bob", home=str(tmp_path), mail=f"maildir:{tmp_path}/other")
    store = await open_mail_store(cfg, user)
    assert store.separator == "." and (tmp_path / "other" / "cur").is_dir()


async def test_sessions_share_one_mailbox_and_wake_at_once(tmp_path):
    store = await open_mail_store(parse_config_text(CONFIG), UserInfo("bob", home=str(tmp_path)))
    a = await store.open_mailbox("INBOX")
    b = await store.open_mailbox("INBOX")
    assert a is b
    waiter = asyncio.ensure_future(a.wait_for_change(30))
    await asyncio.sleep(0)
    version = a.version
    await b.append(MSG)
    assert await waiter is True and a.version > version
    # Our own renames moved the directory stamps: the poller's sync finds
    # nothing new, so nobody is woken for it.
    assert await a.wait_for_change(1.2) is False


async def test_change_by_another_process_is_noticed(tmp_path):
    store = await open_mail_store(parse_config_text(CONFIG), UserInfo("bob", home=str(tmp_path)))
    box = await store.open_mailbox("INBOX")
    await box.sync()
    # Another writer (an LDA, Dovecot): a file appears in new/.
    path = tmp_path / "Maildir" / "new" / "1795713000.P999Q1.otherhost"
    path.write_bytes(b"Subject: x\n\ny\n")
    assert await box.wait_for_change(5) is True
    await box.sync()
    assert [m.guid for m in box.messages()] == ["1795713000.P999Q1.otherhost"]
    # And renamed (flag change) and deleted by it.
    os.rename(path, tmp_path / "Maildir" / "cur" / "1795713000.P999Q1.otherhost:2,FS")
    await box.sync()
    assert box.messages()[0].flags == {"\\Flagged", "\\Seen"}
    os.unlink(tmp_path / "Maildir" / "cur" / "1795713000.P999Q1.otherhost:2,FS")
    await box.sync()
    assert box.messages() == ()


async def test_structure_cached_across_restart(tmp_path):
    store = await open_mail_store(parse_config_text(CONFIG), UserInfo("bob", home=str(tmp_path)))
    box = await store.open_mailbox("INBOX")
    uid = await box.append(MSG)
    struct = await box.structure(uid)
    assert b'"hi"' in struct.envelope
    await store.close()
    forget_stores()
    again = await open_mail_store(parse_config_text(CONFIG), UserInfo("bob", home=str(tmp_path)))
    box2 = await again.open_mailbox("INBOX")
    assert box2 is not box
    # Served from maa-index.cache even with the file gone.
    os.unlink(box2._folder.source_path(uid))
    assert await box2.structure(uid) == struct


async def test_rename_inbox_moves_messages(tmp_path):
    store = MaildirStore("bob", parse_mail_location("maildir:~/Maildir:LAYOUT=fs", "bob", str(tmp_path)))
    await store.prepare()
    inbox = await store.open_mailbox("INBOX")
    await inbox.append(MSG)
    await inbox.append(MSG, ["\\Seen"])
    await store.rename_mailbox("INBOX", "Old")
    old = await store.open_mailbox("Old")
    assert [m.flags for m in old.messages()] == [frozenset(), {"\\Seen"}]
    await inbox.sync()
    assert inbox.messages() == ()


async def test_maildirpp_with_slash_separator(tmp_path):
    location = parse_mail_location("maildir:~/Maildir", "bob", str(tmp_path))
    store = MaildirStore("bob", location, separator="/")
    await store.prepare()
    await store.create_mailbox("Projects/2024")
    assert (tmp_path / "Maildir" / ".Projects.2024").is_dir()
    await store.subscribe("Projects/2024")
    assert (tmp_path / "Maildir" / "subscriptions").read_bytes() == b"V\t2\n\nProjects\t2024\n"
    with pytest.raises(InvalidMailboxName):
        await store.create_mailbox("a.b")  # '.' is the on-disk separator
    assert [e.name for e in await store.list_mailboxes()] == ["INBOX", "Projects", "Projects/2024"]


async def test_unused_stores_are_released(tmp_path):
    import gc

    from maa_server.storage import factory

    cfg = parse_config_text(CONFIG)
    store = await open_mail_store(cfg, UserInfo("bob", home=str(tmp_path)))
    assert len(factory._stores) == 1
    del store
    gc.collect()
    assert len(factory._stores) == 0
