"""Both directions on one Maildir (LAYOUT=fs) with the real Dovecot 2.3:
Dovecot writes and we read the same UIDs, flags, keywords, UIDVALIDITY;
we write and Dovecot reads the same; both append at once and no UID is
duplicated or lost. Our side runs with the mail user's effective uid, as the
real server's mail process would."""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401 - imported before dropping to the mail uid
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from maa_server.storage.location import parse_mail_location
from maa_server.storage.maildir.store import MaildirStore
from maa_server.storage.maildir.uidlist import parse_uidlist
from tests.interop.storage.dovecot_lab import DOVECOT, NOBODY, RealDovecot

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not os.path.exists(DOVECOT), reason="Dovecot is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the real Dovecot needs root to drop to the mail user"),
]

# Codecs and modules load lazily; load them while we can still read the
# interpreter's files (they are not readable for the mail uid).
"\u00fc".encode("utf-16-be").decode("utf-16-be")

MSG = "From: a@example.org\r\nSubject: {subject}\r\n\r\nBody of {subject}\r\n"
FETCH = re.compile(rb"UID (\d+) FLAGS \(([^)]*)\) RFC822\.SIZE (\d+)")


@contextmanager
def as_mail_user() -> Iterator[None]:
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


FS = "maildir:~/Maildir:LAYOUT=fs"


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[RealDovecot]:
    tmp = Path(tempfile.mkdtemp(prefix="maa-storage-"))
    os.chmod(tmp, 0o755)
    dovecot = RealDovecot(tmp, mail_location=getattr(request, "param", FS))
    try:
        yield dovecot
    finally:
        dovecot.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def new_store(lab: RealDovecot, spec: str = FS) -> MaildirStore:
    location = parse_mail_location(spec, "bob", str(lab.home))
    return MaildirStore("bob", location)


def dovecot_view(lab: RealDovecot, box: str) -> tuple[list[tuple[int, frozenset[str], int]], bytes]:
    imap = lab.imap()
    try:
        typ, _ = imap.select(f'"{box}"', readonly=True)
        assert typ == "OK"
        _, data = imap.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE)")
        _, status = imap.status(f'"{box}"', "(UIDVALIDITY UIDNEXT)")
    finally:
        imap.logout()
    rows = []
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        match = FETCH.search(line or b"")
        if match:
            flags = frozenset(f for f in match.group(2).decode().split() if f != "\\Recent")
            rows.append((int(match.group(1)), flags, int(match.group(3))))
    return rows, status[0]


def our_view(box) -> tuple[list[tuple[int, frozenset[str], int]], bytes]:  # type: ignore[no-untyped-def]
    rows = [(m.uid, m.flags, m.size) for m in box.messages()]
    return rows, b"(UIDNEXT %d UIDVALIDITY %d)" % (box.uidnext, box.uidvalidity)


LOCATIONS = [(FS, "/"), (FS + ":CONTROL=~/ctl:INDEX=~/idx", "/"), ("maildir:~/Maildir", "."),
             ("maildir:~/Maildir:CONTROL=~/ctl:INDEX=~/idx", ".")]


@pytest.mark.parametrize(("lab", "sep"), LOCATIONS, indirect=["lab"],
                         ids=["fs", "fs-control-index", "maildir++", "maildir++-control-index"])
def test_dovecot_writes_we_read(lab, sep):
    spec = lab.config.read_text().split("mail_location = ", 1)[1].split("\n", 1)[0]
    sub = f"Work{sep}Sub"
    imap = lab.imap()
    imap.create("Entw&APw-rfe")
    imap.create(sub)
    imap.append("INBOX", r"(\Seen $Forwarded Project_X)", '"04-Jun-2024 10:00:00 +0000"',
                MSG.format(subject="one").encode())
    imap.append("INBOX", r"(\Answered \Flagged $Label1 Urgent)", None, MSG.format(subject="two").encode())
    for n in range(3, 6):
        imap.append("INBOX", None, None, MSG.format(subject=n).encode())
    imap.select("INBOX")
    imap.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
    imap.expunge()
    imap.uid("STORE", "4", "+FLAGS", r"(\Draft $Label1)")
    imap.uid("COPY", "1:2", "Entw&APw-rfe")
    imap.subscribe("Entw&APw-rfe")
    imap.subscribe(sub)
    imap.logout()
    # A foreign delivery straight into new/ (spec 5.12).
    new = lab.home / "Maildir" / "new" / "1795713000.P999Q1.otherhost"
    new.write_bytes(b"Subject: foreign\n\nhi\n")
    os.chown(new, NOBODY, NOBODY)
    expected_inbox = dovecot_view(lab, "INBOX")  # Dovecot gives it its UID first
    expected_entw = dovecot_view(lab, "Entw&APw-rfe")

    async def read() -> None:
        store = new_store(lab, spec)
        await store.prepare()
        inbox = await store.open_mailbox("INBOX")
        assert our_view(inbox) == (expected_inbox[0], expected_inbox[1].split(b" ", 1)[1])
        entw = await store.open_mailbox("Entwürfe")
        assert our_view(entw) == (expected_entw[0], expected_entw[1].split(b" ", 1)[1])
        assert list(inbox.keywords) == ["$Forwarded", "Project_X", "$Label1", "Urgent"]
        assert inbox.get(1).internal_date == 1717495200
        assert (await inbox.read_message(1)).endswith(b"Body of one\n")
        names = [e.name for e in await store.list_mailboxes()]
        assert names == ["INBOX", "Entwürfe", "Work", sub]
        assert await store.subscriptions() == ["Entwürfe", sub]
        await store.close()

    with as_mail_user():
        asyncio.run(read())


def test_we_write_dovecot_reads(lab):
    lab.imap().logout()  # Dovecot creates the INBOX

    async def write() -> None:
        store = new_store(lab)
        await store.prepare()
        await store.create_mailbox("Entwürfe")
        await store.create_mailbox("Projects/2024")
        inbox = await store.open_mailbox("INBOX")
        u1 = await inbox.append(MSG.format(subject="one").encode(), ["\\Seen", "$Forwarded", "Project_X"],
                                1717495200)
        u2 = await inbox.append(MSG.format(subject="two").encode())
        u3 = await inbox.append(MSG.format(subject="three").encode(), ["\\Flagged"])
        await inbox.store_flags([u2], ["\\Answered", "Urgent"], "add")
        await inbox.store_flags([u3], ["\\Deleted"], "add")
        assert await inbox.expunge() == [u3]
        entw = await store.open_mailbox("Entwürfe")
        assert await inbox.copy_to([u1, u2], entw) == [(u1, 1), (u2, 2)]
        await store.subscribe("Entwürfe")
        await store.subscribe("Projects/2024")
        await store.close()

    with as_mail_user():
        asyncio.run(write())
    rows, status = dovecot_view(lab, "INBOX")
    size = len(MSG.format(subject="one").encode())
    assert rows == [(1, frozenset({"\\Seen", "$Forwarded", "Project_X"}), size),
                    (2, frozenset({"\\Answered", "Urgent"}), size)]
    assert b"UIDNEXT 4" in status
    rows, _ = dovecot_view(lab, "Entw&APw-rfe")
    assert [r[:2] for r in rows] == [(1, frozenset({"\\Seen", "$Forwarded", "Project_X"})),
                                     (2, frozenset({"\\Answered", "Urgent"}))]
    imap = lab.imap()
    _, listing = imap.list()
    _, lsub = imap.lsub()
    _, date = imap.uid("FETCH", "1", "INTERNALDATE") if imap.select("INBOX")[0] == "OK" else (None, [b""])
    imap.logout()
    names = sorted(line.decode().rsplit(" ", 1)[1].strip('"') for line in listing)
    assert names == ["Entw&APw-rfe", "INBOX", "Projects", "Projects/2024"]
    assert sorted(line.decode().rsplit(" ", 1)[1].strip('"') for line in lsub) == ["Entw&APw-rfe", "Projects/2024"]
    assert b"04-Jun-2024 10:00:00 +0000" in date[0]


def test_concurrent_appends_no_uid_lost_or_duplicated(lab):
    lab.imap().logout()
    count = 150
    errors: list[BaseException] = []

    def dovecot_appends() -> None:
        try:
            imap = lab.imap()
            for n in range(count):
                imap.append("INBOX", None, None, MSG.format(subject=f"dovecot {n}").encode())
            imap.logout()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    async def our_appends() -> dict[int, str]:
        store = new_store(lab)
        await store.prepare()
        inbox = await store.open_mailbox("INBOX")
        for n in range(count):
            await inbox.append(MSG.format(subject=f"maa {n}").encode())
        await inbox.sync()
        subjects = {}
        for info in inbox.messages():
            raw = await inbox.read_message(info.uid)
            subjects[info.uid] = raw.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].decode()
        return subjects

    thread = threading.Thread(target=dovecot_appends)
    with as_mail_user():
        thread.start()
        ours = asyncio.run(our_appends())
        thread.join()
        ours = asyncio.run(our_appends_check(lab))
    assert not errors
    assert len(ours) == 2 * count
    assert sorted(ours.values()) == sorted([f"dovecot {n}" for n in range(count)] + [f"maa {n}" for n in range(count)])
    uidlist = parse_uidlist((lab.home / "Maildir" / "dovecot-uidlist").read_bytes())
    uids = [r.uid for r in uidlist.records.values()]
    assert len(uids) == len(set(uids)) == 2 * count
    # Dovecot sees the very same UID -> message mapping.
    imap = lab.imap()
    imap.select("INBOX", readonly=True)
    _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    imap.logout()
    theirs = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            theirs[uid] = item[1].split(b"Subject: ", 1)[1].strip().decode()
    assert theirs == ours


async def our_appends_check(lab: RealDovecot) -> dict[int, str]:
    """A fresh process view (no shared state): UID -> Subject."""
    store = new_store(lab)
    await store.prepare()
    inbox = await store.open_mailbox("INBOX")
    subjects = {}
    for info in inbox.messages():
        raw = await inbox.read_message(info.uid)
        subjects[info.uid] = raw.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].decode()
    return subjects
