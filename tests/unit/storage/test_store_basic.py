"""MaildirStore/MaildirMailbox end to end on a temporary Maildir (LAYOUT=fs and Maildir++)."""

from __future__ import annotations

import os

import pytest

from maa_server.storage.interface import (
    DELETED,
    FLAGGED,
    SEEN,
    InvalidMailboxName,
    MailboxExists,
    NoSuchMailbox,
    NoSuchMessage,
)
from maa_server.storage.location import parse_mail_location
from maa_server.storage.maildir.store import AutoMailbox, MaildirStore

MSG = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody line\r\n"


async def make_store(tmp_path, layout: str = "fs", **kw) -> MaildirStore:
    spec = "maildir:~/Maildir" + (":LAYOUT=fs" if layout == "fs" else "")
    store = MaildirStore("bob", parse_mail_location(spec, "bob", str(tmp_path)), **kw)
    await store.prepare()
    return store


async def test_append_writes_dovecot_files(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("inbox")
    assert inbox.name == "INBOX"
    uid = await inbox.append(MSG, internal_date=1717495200)
    assert uid == 1
    root = tmp_path / "Maildir"
    (name,) = os.listdir(root / "new")
    # LF line ends stored; S= is the stored size, W= the CRLF size (spec 5.2).
    data = (root / "new" / name).read_bytes()
    assert data == MSG.replace(b"\r\n", b"\n")
    assert name.endswith(f",S={len(data)},W={len(MSG)}")
    assert os.stat(root / "new" / name).st_mtime == 1717495200
    lines = (root / "dovecot-uidlist").read_text().splitlines()
    assert lines[0].startswith(f"3 V{inbox.uidvalidity} N1 G")
    assert lines[1] == f"1 :{name}"
    info = inbox.get(1)
    assert info is not None and info.size == len(MSG) and info.internal_date == 1717495200
    assert inbox.uidnext == 2


async def test_flags_and_keywords_in_file_names(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    uid = await inbox.append(MSG, [SEEN, "$Forwarded", "Project_X"])
    root = tmp_path / "Maildir"
    (name,) = os.listdir(root / "cur")
    assert name.endswith(":2,Sab")
    assert (root / "dovecot-keywords").read_text() == "0 $Forwarded\n1 Project_X\n"
    before = inbox.highest_modseq
    changed, failed = await inbox.store_flags([uid], [FLAGGED, "Urgent"], "add")
    assert failed == [] and changed[0].flags == {SEEN, FLAGGED, "$Forwarded", "Project_X", "Urgent"}
    assert changed[0].modseq > before == changed[0].modseq - 1
    (name,) = os.listdir(root / "cur")
    assert name.endswith(":2,FSabc")
    changed, failed = await inbox.store_flags([uid], [FLAGGED], "remove", unchanged_since=before)
    assert changed == [] and failed == [uid]
    changed, _ = await inbox.store_flags([uid], [], "set")
    assert changed[0].flags == frozenset()
    (name,) = os.listdir(root / "cur")
    assert name.endswith(":2,")


async def test_expunge_and_copy(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    uids = [await inbox.append(MSG + bytes([65 + i])) for i in range(4)]
    await store.create_mailbox("Archive")
    archive = await store.open_mailbox("Archive")
    pairs = await inbox.copy_to(uids[:2], archive)
    assert pairs == [(1, 1), (2, 2)]
    src = inbox._folder.source_path(1)
    dst = archive._folder.source_path(1)
    assert src and dst and os.stat(src).st_ino == os.stat(dst).st_ino  # hard link
    await inbox.store_flags(uids[1:3], [DELETED], "add")
    assert await inbox.expunge([3, 4]) == [3]
    assert await inbox.expunge() == [2]
    assert [m.uid for m in inbox.messages()] == [1, 4]
    with pytest.raises(NoSuchMessage):
        await inbox.read_message(2)
    assert (await inbox.read_message(4)).endswith(b"D")


async def test_move_and_recent(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    await inbox.append(MSG)
    await inbox.append(MSG)
    assert inbox.recent_count() == 2
    assert inbox.claim_recent() == {1, 2}
    assert inbox.claim_recent() == frozenset()
    await store.create_mailbox("Trash")
    trash = await store.open_mailbox("Trash")
    assert await inbox.move_to([1], trash) == [(1, 1)]
    assert [m.uid for m in inbox.messages()] == [2]
    assert [m.uid for m in trash.messages()] == [1]


async def test_names_validated(tmp_path):
    store = await make_store(tmp_path)
    for bad in ["", "../x", "a/../b", "/abs", "~x", "a//b", "a\x00b", "a\x01", "cur", "x/new", "..", "a/./b"]:
        with pytest.raises(InvalidMailboxName):
            await store.create_mailbox(bad)
    assert not any(p.name.startswith("..") for p in tmp_path.iterdir())
    # Accepted as by Dovecot 2.3 (observed): dot levels, doubled dots.
    for good in [".hidden", "x/.y", "a..b", "DOVECOT-TRASHED"]:
        await store.create_mailbox(good)
    names = {e.name for e in await store.list_mailboxes()}
    assert {".hidden", "x/.y", "a..b", "DOVECOT-TRASHED"} <= names
    with pytest.raises(MailboxExists):
        await store.create_mailbox("INBOX")
    with pytest.raises(NoSuchMailbox):
        await store.open_mailbox("Nope")


async def test_list_rename_delete_fs(tmp_path):
    store = await make_store(tmp_path)
    await store.create_mailbox("Entwürfe")
    await store.create_mailbox("Work/Projects/Q1")
    assert (tmp_path / "Maildir" / "Entw&APw-rfe" / "cur").is_dir()
    entries = {e.name: e.attributes for e in await store.list_mailboxes()}
    assert next(iter(entries)) == "INBOX"
    assert entries["Work"] == {"\\Noselect", "\\HasChildren"}
    assert entries["Work/Projects/Q1"] == {"\\HasNoChildren"}
    assert entries["Entwürfe"] == {"\\HasNoChildren"}
    await store.rename_mailbox("Work", "Job")
    names = [e.name for e in await store.list_mailboxes()]
    assert "Job/Projects/Q1" in names and "Work" not in names
    await store.create_mailbox("Job/Projects")
    await store.delete_mailbox("Job/Projects")  # has children: becomes \Noselect
    entries = {e.name: e.attributes for e in await store.list_mailboxes()}
    assert "\\Noselect" in entries["Job/Projects"]
    await store.delete_mailbox("Job/Projects/Q1")
    assert "Job/Projects/Q1" not in [e.name for e in await store.list_mailboxes()]


async def test_maildirpp_layout(tmp_path):
    store = await make_store(tmp_path, layout="maildir++")
    assert store.separator == "."
    await store.create_mailbox("Projects.2024.Q1")
    root = tmp_path / "Maildir"
    assert (root / ".Projects.2024.Q1" / "maildirfolder").exists()
    entries = {e.name: e.attributes for e in await store.list_mailboxes()}
    assert entries["Projects"] == {"\\Noselect", "\\HasChildren"}
    await store.create_mailbox("Projects.2024")
    await store.rename_mailbox("Projects.2024", "Projects.2025")
    assert (root / ".Projects.2025.Q1").is_dir() and not (root / ".Projects.2024.Q1").exists()


async def test_subscriptions_v2(tmp_path):
    store = await make_store(tmp_path, layout="maildir++")
    await store.create_mailbox("Projects.2024")
    for name in ["Entwürfe", "Projects.2024", "inbox", "Archive"]:
        await store.subscribe(name)
    data = (tmp_path / "Maildir" / "subscriptions").read_bytes()
    assert data == b"V\t2\n\nEntw&APw-rfe\nProjects\t2024\nINBOX\nArchive\n"
    await store.unsubscribe("Archive")
    assert await store.subscriptions() == ["Entwürfe", "Projects.2024", "INBOX"]


async def test_auto_mailboxes(tmp_path):
    auto = [AutoMailbox("Sent", frozenset({"\\Sent"}), "subscribe"), AutoMailbox("Junk", frozenset({"\\Junk"}), "create"),
            AutoMailbox("Trash", frozenset({"\\Trash"}), "no")]
    store = await make_store(tmp_path, layout="maildir++", auto_mailboxes=auto)
    entries = {e.name: e for e in await store.list_mailboxes()}
    assert entries["Sent"].special_use == {"\\Sent"} and entries["Sent"].subscribed
    assert "Junk" in entries and not entries["Junk"].subscribed and "Trash" not in entries
    assert not (tmp_path / "Maildir" / ".Sent").exists()
    assert await store.subscriptions() == ["Sent"]
    box = await store.open_mailbox("Sent")
    assert (tmp_path / "Maildir" / ".Sent" / "cur").is_dir() and box.messages() == ()


async def test_deliver_falls_back_to_inbox(tmp_path):
    store = await make_store(tmp_path)
    assert await store.deliver(MSG, "Missing") == 1
    inbox = await store.open_mailbox("INBOX")
    assert len(inbox.messages()) == 1
    assert await store.deliver(MSG, "New", create=True) == 1
    assert "New" in [e.name for e in await store.list_mailboxes()]


async def test_compaction_never_lowers_next_uid(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    for _ in range(4):
        await inbox.append(MSG)
    assert await inbox.remove([3, 4]) == [3, 4]  # 2 of 4 live: rewritten
    lines = (tmp_path / "Maildir" / "dovecot-uidlist").read_text().splitlines()
    assert lines[0].split()[2] == "N5" and len(lines) == 3
    assert await inbox.append(MSG) == 5


async def test_foreign_files_get_uids_in_dovecot_order(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    root = tmp_path / "Maildir"
    (root / "cur" / "1795713001.P999Q2.otherhost:2,S").write_bytes(b"Subject: b\n\nx\n")
    (root / "new" / "1795713000.P999Q1.otherhost").write_bytes(b"Subject: a\n\nx\n")
    (root / "new" / ".hidden").write_bytes(b"x")
    assert await inbox.wait_for_change(2.0)
    await inbox.sync()
    msgs = inbox.messages()
    assert [(m.uid, m.guid, m.flags) for m in msgs] == [
        (1, "1795713000.P999Q1.otherhost", frozenset()), (2, "1795713001.P999Q2.otherhost", {SEEN})]
    assert msgs[0].size == len(b"Subject: a\r\n\r\nx\r\n")
    assert (root / "dovecot-uidlist").read_text().splitlines()[1:] == [
        "1 :1795713000.P999Q1.otherhost", "2 :1795713001.P999Q2.otherhost"]
    assert inbox.claim_recent() == {1, 2}


async def test_index_cache_keeps_modseq_across_restart(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    await inbox.append(MSG)
    await inbox.store_flags([1], [SEEN], "add")
    modseq, highest = inbox.get(1).modseq, inbox.highest_modseq
    await store.close()
    again = await make_store(tmp_path)
    box = await again.open_mailbox("INBOX")
    assert box.get(1).modseq == modseq and box.highest_modseq == highest
    # A corrupt cache is ignored, never trusted.
    (tmp_path / "Maildir" / "maa-index.cache").write_bytes(b"garbage")
    third = await make_store(tmp_path)
    box = await third.open_mailbox("INBOX")
    assert [m.uid for m in box.messages()] == [1] and box.get(1).flags == {SEEN}


async def test_tmp_leftovers_removed(tmp_path):
    store = await make_store(tmp_path)
    root = tmp_path / "Maildir"
    old = root / "tmp" / "old.P1.host"
    old.write_bytes(b"half")
    fresh = root / "tmp" / "fresh.P1.host"
    fresh.write_bytes(b"half")
    inbox = await store.open_mailbox("INBOX")
    folder = inbox._folder
    folder.last_tmp_scan = 0
    import maa_server.storage.maildir.folder as folder_mod
    orig = folder_mod.TMP_MAX_AGE
    folder_mod.TMP_MAX_AGE = -60  # everything counts as old, no clock games
    try:
        os.unlink(fresh)
        folder.clean_tmp()
    finally:
        folder_mod.TMP_MAX_AGE = orig
    assert not old.exists()
    assert inbox.messages() == ()


async def test_pop3_uidls_saved_as_p_fields(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    await inbox.append(MSG)
    await inbox.append(MSG)
    base2 = inbox.get(2).guid
    await inbox.save_pop3_uidls({1: "000000016b086864", 2: base2})
    lines = (tmp_path / "Maildir" / "dovecot-uidlist").read_text().splitlines()
    assert lines[1] == f"1 P000000016b086864 :{inbox.get(1).guid}"
    assert lines[2] == f"2 P :{base2}"
    assert (inbox.get(1).pop3_uidl, inbox.get(2).pop3_uidl) == ("000000016b086864", base2)
    again = await make_store(tmp_path)
    box = await again.open_mailbox("INBOX")
    assert box.get(1).pop3_uidl == "000000016b086864"


async def test_lost_uidlist_keeps_uidvalidity_and_renumbers(tmp_path):
    # Spec 5.11: with its index Dovecot keeps UIDVALIDITY but renumbers.
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    for _ in range(3):
        await inbox.append(MSG)
    uidvalidity = inbox.uidvalidity
    os.unlink(tmp_path / "Maildir" / "dovecot-uidlist")
    await inbox.sync()
    assert inbox.uidvalidity == uidvalidity
    assert [m.uid for m in inbox.messages()] == [4, 5, 6]


async def test_broken_uidlist_is_rebuilt(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    await inbox.append(MSG)
    (tmp_path / "Maildir" / "dovecot-uidlist").write_bytes(b"3 V1 N1 G0\n5 :a\n2 :b\n")
    await inbox.sync()
    assert len(inbox.messages()) == 1
    assert (tmp_path / "Maildir" / "dovecot-uidlist").read_bytes().startswith(b"3 V")


async def test_store_keeps_a_concurrent_rename_by_another_writer(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    uid = await inbox.append(MSG, [SEEN])
    cur = tmp_path / "Maildir" / "cur"
    (name,) = os.listdir(cur)
    # Dovecot sets \Answered before we saw it; our +\Flagged keeps it.
    os.rename(cur / name, cur / name.replace(":2,S", ":2,RS"))
    changed, _ = await inbox.store_flags([uid], [FLAGGED], "add")
    assert changed[0].flags == {SEEN, FLAGGED, "\\Answered"}
    assert os.listdir(cur) == [name.replace(":2,S", ":2,FRS")]


async def test_disk_errors_become_mailbox_errors(tmp_path, monkeypatch):
    import errno as errno_mod

    from maa_server.storage.interface import MailboxError, StorageFull
    from maa_server.storage.maildir import saving

    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")

    def full(*args, **kwargs):
        raise OSError(errno_mod.ENOSPC, "No space left on device")

    monkeypatch.setattr(saving, "commit", full)
    with pytest.raises(StorageFull):
        await inbox.append(MSG)

    def broken(*args, **kwargs):
        raise PermissionError(errno_mod.EACCES, "Permission denied")

    monkeypatch.setattr(saving, "commit", broken)
    with pytest.raises(MailboxError) as info:
        await inbox.append(MSG)
    assert info.value.code == "SERVERBUG"
    assert os.listdir(tmp_path / "Maildir" / "tmp") == []  # nothing half-saved left behind


async def test_keywords_past_26_letters_kept_in_our_index(tmp_path):
    store = await make_store(tmp_path)
    inbox = await store.open_mailbox("INBOX")
    uid = await inbox.append(MSG, [f"k{i}" for i in range(26)])
    changed, _ = await inbox.store_flags([uid], ["Extra1", "Extra2"], "add")
    assert {"Extra1", "Extra2", "k0", "k25"} <= changed[0].flags
    assert list(inbox.keywords)[-2:] == ["Extra1", "Extra2"]
    (name,) = os.listdir(tmp_path / "Maildir" / "cur")
    assert name.endswith(":2," + "abcdefghijklmnopqrstuvwxyz")  # letters only for the 26
    changed, _ = await inbox.store_flags([uid], ["Extra1"], "remove")
    assert "Extra1" not in changed[0].flags and "Extra2" in changed[0].flags
    await store.close()
    again = await make_store(tmp_path)
    box = await again.open_mailbox("INBOX")
    assert "Extra2" in box.get(uid).flags and "Extra2" in box.keywords


async def test_maildirpp_delete_parent_keeps_children(tmp_path):
    store = await make_store(tmp_path, layout="maildir++")
    await store.create_mailbox("Projects")
    await store.create_mailbox("Projects.2024")
    box = await store.open_mailbox("Projects")
    await box.append(MSG)
    await store.delete_mailbox("Projects")
    root = tmp_path / "Maildir"
    assert not (root / ".Projects").exists() and (root / ".Projects.2024").is_dir()
    assert not any(p.name.startswith(".DOVECOT-TRASHED") for p in root.iterdir())
    entries = {e.name: e.attributes for e in await store.list_mailboxes()}
    assert entries["Projects"] == {"\\Noselect", "\\HasChildren"}
    await box.sync()  # a session that had it open sees it emptied
    assert box.messages() == ()
    with pytest.raises(NoSuchMailbox):
        await store.delete_mailbox("Projects")
