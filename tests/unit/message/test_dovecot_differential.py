"""Differential test: random MIME soup through Dovecot 2.3 and through us.

Seeded, so a failure is reproducible; needs Debian's dovecot-imapd and root
(Dovecot's imap binary is run in PREAUTH mode as user nobody on a private
Maildir under /tmp; no listener, no port). Skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest

from maa_server.storage.message import get_section, parse_structure

IMAP_BIN = Path("/usr/lib/dovecot/imap")
CAPTURE = (
    Path(__file__).resolve().parents[2] / "fixtures" / "mime" / "capture_dovecot.py"
)

pytestmark = pytest.mark.skipif(
    not IMAP_BIN.exists() or os.geteuid() != 0,
    reason="needs Dovecot's imap binary and root",
)

HEADERS = [
    b"From: a@b\n",
    b'From: "x y" <a@b>, c@d\n',
    b"To: g: a@b;\n",
    b"Subject: s\n",
    b"Subject: \xc3\xa9 x\n",
    b"Content-Type: multipart/mixed; boundary=b\n",
    b"Content-Type: multipart/mixed; boundary=c\n",
    b"Content-Type: multipart/digest; boundary=b\n",
    b"Content-Type: message/rfc822\n",
    b"Content-Type: text/plain\n",
    b'Content-Type: text/html; charset="utf-8"\n',
    b"Content-Type: application/pdf; name=x.pdf\n",
    b'Content-Disposition: attachment; filename="a b"\n',
    b"Content-Transfer-Encoding: base64\n",
    b"Content-ID: <x@y>\n",
    b"Content-Language: en\n",
    b" folded\n",
    b"MIME-Version: 1.0\n",
    b"X-Junk: --b\n",
    b"no colon\n",
    b"Cc: (c) x.y, <q@r>\n",
]
BODY = [
    b"--b\n",
    b"--b--\n",
    b"--c\n",
    b"--c--\n",
    b"text\n",
    b"\n",
    b"--bb\n",
    b"-- \n",
    b"\r\n",
    b"x",
    b"--b",
]
SECTIONS = [
    ((), "TEXT"),
    ((1,), ""),
    ((1,), "MIME"),
    ((2,), ""),
    ((1, 1), ""),
    ((2,), "HEADER"),
    ((2, 1), "MIME"),
]


def soup(rnd: random.Random) -> bytes:
    out = [rnd.choice(HEADERS) for _ in range(rnd.randint(0, 5))] + [b"\n"]
    for _ in range(rnd.randint(0, 25)):
        r = rnd.random()
        out.append(
            rnd.choice(BODY)
            if r < 0.35
            else rnd.choice(HEADERS)
            if r < 0.75
            else rnd.choice(BODY[4:6])
        )
    return b"".join(out)


def test_random_messages_match_dovecot() -> None:
    spec = importlib.util.spec_from_file_location("capture_dovecot", CAPTURE)
    assert spec is not None and spec.loader is not None
    capture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(capture)
    rnd = random.Random(20261127)
    messages = [soup(rnd) for _ in range(30)]
    items = ["BODYSTRUCTURE", "ENVELOPE"]
    items += [
        f"BODY.PEEK[{'.'.join(map(str, p))}{'.' if p and s else ''}{s}]"
        for p, s in SECTIONS
    ]
    root = Path(tempfile.mkdtemp(prefix="maa-mime-diff-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        answers = capture.fetch_values(messages, items, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    mismatches = []
    for raw, row in zip(messages, answers, strict=True):
        s = parse_structure(raw)
        ours = [s.bodystructure, s.envelope] + [
            get_section(raw, p, sp) for p, sp in SECTIONS
        ]
        mismatches += [
            (item, raw, theirs, mine)
            for item, theirs, mine in zip(items, row, ours)
            if theirs != mine
        ]
    assert not mismatches, mismatches[:3]
