"""Replay every captured Dovecot exchange against a whole maa-server and print the differences.

Not a test (it starts a real server on loopback, which unit tests must not):
a tool for the integrator. It builds the same six-message Maildir that
capture_dovecot.py gave Dovecot, starts maa's IMAP session with real config,
auth and storage (tests/integration/imap/harness.py), sends the same
commands and prints each answer that differs from Dovecot's, after masking
tags, UIDVALIDITY and the timing suffix:

    .venv/bin/python tests/unit/imap_fetch/replay_against_maa.py
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.integration.imap.harness import PASSWORD, ImapServer  # noqa: E402
from tests.unit.imap_fetch import capture_dovecot  # noqa: E402
from tests.unit.imap_fetch.dovecot_fixtures import (  # noqa: E402
    EXTRA_MESSAGES,
    KEYWORDS,
    MAILBOX,
    MAILBOX_EXTRA,
    MAILBOX_THREAD,
    MESSAGES,
    THREAD_MESSAGES,
    load,
)

TIMING = re.compile(rb" \(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)\.")
SCENARIOS = (("fetch", "fetchuser"), ("condstore", "condstoreuser"), ("search", "searchuser"),
             ("extra", "extrauser"), ("sort", "sortuser"), ("sort_extra", "sortextrauser"),
             ("thread", "threaduser"))


def make_maildir(maildir: Path, scenario: str) -> None:
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (maildir / "dovecot-keywords").write_text(
        "".join(f"{i} {k}\n" for i, k in enumerate(KEYWORDS)))
    table, directory = {
        "extra": (MAILBOX_EXTRA, EXTRA_MESSAGES), "sort_extra": (MAILBOX_EXTRA, EXTRA_MESSAGES),
        "thread": (MAILBOX_THREAD, THREAD_MESSAGES),
    }.get(scenario, (MAILBOX, MESSAGES))
    for n, (name, flags, keywords, mtime) in enumerate(table, 1):
        data = (directory / name).read_bytes()
        letters = "".join(sorted(flags + "".join(chr(ord("a") + KEYWORDS.index(k))
                                                 for k in keywords)))
        size = len(data.replace(b"\n", b"\r\n"))
        # The name orders the UIDs (Dovecot sorts new files by name); the
        # mtime is the internal date, which need not follow that order.
        base = f"{1700000000 + n}.M{n}P1.lab,S={len(data)},W={size}"
        path = maildir / "cur" / f"{base}:2,{letters}"
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))


def normalise(data: bytes) -> bytes:
    data = TIMING.sub(b".", data)
    data = re.sub(rb"UIDVALIDITY \d+", b"UIDVALIDITY N", data)
    data = re.sub(rb"(?m)^c\d+ ", b"TAG ", data)
    return re.sub(rb'TAG "c\d+"', b'TAG "TAG"', data)


def main() -> int:
    os.environ["TZ"] = "UTC"  # Dovecot ran in UTC; INTERNALDATE is local time
    time.tzset()
    server = ImapServer(Path(tempfile.mkdtemp()), users=tuple(u for _, u in SCENARIOS))
    for scenario, user in SCENARIOS:
        make_maildir(server.maildir(user), scenario)
    server.start()
    capture_dovecot.PORT = server.port
    differences = total = 0
    try:
        for scenario, user in SCENARIOS:
            client = capture_dovecot.RawClient()
            client.command(f"LOGIN {user} {PASSWORD}".encode())
            for ex in load(scenario):
                total += 1
                ours = normalise(client.command(ex.command))
                theirs = normalise(ex.response)
                if ours != theirs:
                    differences += 1
                    print(f"== {scenario}: {ex.command[:100]!r}")
                    print(f"   dovecot: {theirs[:500]!r}")
                    print(f"   maa:     {ours[:500]!r}")
    finally:
        server.stop()
    print(f"{differences} of {total} answers differ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
