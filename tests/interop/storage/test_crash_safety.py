"""A writer process killed (SIGKILL) at random points while appending,
flagging and expunging leaves a consistent Maildir: every visible message is
complete, dovecot-uidlist parses with unique UIDs, and the next writer gets
past the dead process's lock (spec 5.6: a dead local pid's lock is removed)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from maa_server.storage.location import parse_mail_location
from maa_server.storage.maildir.filename import parse_name
from maa_server.storage.maildir.store import MaildirStore
from maa_server.storage.maildir.uidlist import parse_uidlist

WRITER = r"""
import asyncio, sys
from maa_server.storage.location import parse_mail_location
from maa_server.storage.maildir.store import MaildirStore

async def main():
    store = MaildirStore("u", parse_mail_location("maildir:" + sys.argv[1] + ":LAYOUT=fs", "u", ""))
    await store.prepare()
    box = await store.open_mailbox("INBOX")
    n = int(sys.argv[2])
    print("ready", flush=True)
    while True:
        body = (b"Subject: %d\r\n\r\n" % n) + b"x" * 100000 + b"\r\nEND\r\n"
        uid = await box.append(body, ["\\Seen"] if n % 2 else [])
        if n % 3 == 0:
            await box.store_flags([uid], ["\\Flagged", "kw%d" % (n % 5)], "add")
        if n % 4 == 0:
            await box.remove([uid])
        n += 1

asyncio.run(main())
"""


def run_and_kill(maildir: Path, start: int, rng: random.Random) -> None:
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(maildir), str(start)],
                             stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[3])
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    time.sleep(rng.uniform(0.02, 0.25))
    child.send_signal(signal.SIGKILL)
    child.wait()


def test_killed_writer_leaves_consistent_maildir(tmp_path):
    maildir = tmp_path / "Maildir"
    rng = random.Random(1234)
    for round_no in range(5):
        run_and_kill(maildir, round_no * 100000, rng)

    async def check() -> None:
        store = MaildirStore("u", parse_mail_location(f"maildir:{maildir}:LAYOUT=fs", "u", ""))
        await store.prepare()
        box = await store.open_mailbox("INBOX")
        await box.sync()
        assert box.messages(), "the writers saved something"
        for info in box.messages():
            raw = await box.read_message(info.uid)
            assert raw.endswith(b"\nEND\n")
            assert parse_name(info.guid).size == len(raw)
        # One more save works (stale lock of a dead pid removed).
        uid = await box.append(b"Subject: after\r\n\r\nok\r\n")
        assert uid == max(m.uid for m in box.messages())

    asyncio.run(check())
    uidlist = parse_uidlist((maildir / "dovecot-uidlist").read_bytes())
    uids = [r.uid for r in uidlist.records.values()]
    assert len(uids) == len(set(uids))
    visible = [n for sub in ("new", "cur") for n in os.listdir(maildir / sub)]
    assert len(visible) == len({n.partition(":")[0] for n in visible})
