"""A Maildir written by Dovecot 2.3 (captured files) reads back with Dovecot's
UIDs, flags, keywords, sizes, UIDVALIDITY and UIDNEXT (manifest.json holds what
Dovecot's own IMAP answered for it)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from maa_server.storage.location import parse_mail_location
from maa_server.storage.maildir.store import MaildirStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dovecot_maildir"
FETCH = re.compile(r"UID (\d+) FLAGS \(([^)]*)\) RFC822.SIZE (\d+)")
STATUS = re.compile(r"MESSAGES (\d+) UIDNEXT (\d+) UIDVALIDITY (\d+)")


def build_maildir(root: Path) -> dict:
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    for path in FIXTURES.iterdir():
        if path.name.startswith("msg__"):
            _, box, sub, name = path.name.split("__", 3)
            folder = root if box == "INBOX" else root / box
            (folder / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / sub / name)
        elif path.name != "manifest.json":
            target = root / path.name.replace("__", "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    for folder in (root, root / "Entw&APw-rfe", root / "Work" / "Sub"):
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    for marker in manifest["markers"]:
        (root / marker).touch()
    return manifest


async def test_dovecot_maildir_reads_identically(tmp_path):
    root = tmp_path / "Maildir"
    manifest = build_maildir(root)
    uidlist_before = (root / "dovecot-uidlist").read_bytes()
    store = MaildirStore("bob", parse_mail_location("maildir:~/Maildir:LAYOUT=fs", "bob", str(tmp_path)))
    await store.prepare()
    for imap_name, name in (("INBOX", "INBOX"), ("Entw&APw-rfe", "Entwürfe")):
        box = await store.open_mailbox(name)
        expected = [FETCH.search(line).groups() for line in manifest[imap_name]["fetch"]]
        got = [(str(m.uid), m.flags, str(m.size)) for m in box.messages()]
        assert got == [(uid, frozenset(f for f in flags.split() if f != "\\Recent"), size)
                       for uid, flags, size in expected]
        messages, uidnext, uidvalidity = map(int, STATUS.search(manifest[imap_name]["status"]).groups())
        assert (len(box.messages()), box.uidnext, box.uidvalidity) == (messages, uidnext, uidvalidity)
    # Reading changed nothing Dovecot relies on.
    assert (root / "dovecot-uidlist").read_bytes() == uidlist_before
    names = [e.name for e in await store.list_mailboxes()]
    assert names[0] == "INBOX" and {"Entwürfe", "Work", "Work/Sub"} <= set(names)
    assert await store.subscriptions() == ["Entwürfe", "Projects.2024", "INBOX", "Work/Sub"]
    # A new folder continues Dovecot's UIDVALIDITY counter.
    marker = int(manifest["markers"][0].rsplit(".", 1)[1], 16)
    await store.create_mailbox("Fresh")
    assert (await store.open_mailbox("Fresh")).uidvalidity == marker + 1
