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


# Well-formed, realistic messages: nested multiparts, forwarded messages,
# RFC 2047/2231, CRLF or LF, 8-bit headers, groups.
NAMES = [
    b"Alice",
    b'"Bob B."',
    b"=?utf-8?q?J=C3=B6rg?=",
    b'"Doe, John"',
    b"",
    b"M\xc3\xbcller",
    b"(comment)",
]


def addr(rnd: random.Random) -> bytes:
    u = (
        rnd.choice([b"a", b"bob.smith", b"x+tag", b'"odd user"'])
        + b"@"
        + rnd.choice([b"example.org", b"EXAMPLE.com", b"[10.0.0.1]"])
    )
    n = rnd.choice(NAMES)
    if n == b"(comment)":
        return u + b" (Real Name)"
    return (n + b" <" + u + b">") if n else u


def hdr_value(rnd: random.Random, s: bytes) -> bytes:
    if rnd.random() < 0.2:
        return s.replace(b" ", b"\n ", 1)
    return s


def headers(rnd: random.Random, top: bool) -> list[bytes]:
    h = []
    if top:
        if rnd.random() < 0.9:
            h.append(
                b"From: "
                + hdr_value(
                    rnd, b", ".join(addr(rnd) for _ in range(rnd.randint(1, 2)))
                )
            )
        if rnd.random() < 0.8:
            h.append(
                b"To: "
                + hdr_value(
                    rnd, b", ".join(addr(rnd) for _ in range(rnd.randint(1, 3)))
                )
            )
        if rnd.random() < 0.3:
            h.append(
                b"Cc: "
                + rnd.choice(
                    [
                        b"undisclosed-recipients:;",
                        b"list: " + addr(rnd) + b", " + addr(rnd) + b";",
                        addr(rnd),
                    ]
                )
            )
        if rnd.random() < 0.9:
            h.append(
                b"Subject: "
                + hdr_value(
                    rnd,
                    rnd.choice(
                        [
                            b"Re: hello there",
                            b"=?UTF-8?B?w6nDqQ==?= x",
                            b"caf\xc3\xa9 au lait",
                            b"tab\there",
                            b'a "quoted" word',
                            b"",
                        ]
                    ),
                )
            )
        if rnd.random() < 0.8:
            h.append(
                b"Date: "
                + rnd.choice(
                    [b"Mon, 1 Jan 2001 00:00:00 +0000", b"1 Jan 2001 00:00 -0500 (EST)"]
                )
            )
        if rnd.random() < 0.7:
            h.append(b"Message-ID: <" + str(rnd.randint(1, 10**6)).encode() + b"@x>")
        if rnd.random() < 0.3:
            h.append(b"In-Reply-To: <p@x>")
        if rnd.random() < 0.6:
            h.append(b"MIME-Version: 1.0")
    return h


def body_lines(rnd: random.Random) -> bytes:
    return b"".join(
        rnd.choice(
            [
                b"line of text\n",
                b"\n",
                b"=C3=A9 qp=\n",
                b"  indented\n",
                b"-- \n",
                b"--not a boundary\n",
                b"caf\xc3\xa9\n",
            ]
        )
        for _ in range(rnd.randint(0, 6))
    )


def part(rnd: random.Random, depth: int, top: bool = False) -> bytes:
    h = headers(rnd, top)
    r = rnd.random()
    if depth < 3 and r < 0.3:
        b = (
            rnd.choice(
                [b"b1", b"=_Part_0_123.456", b"------------0123ABC", b"bound ary"]
            )
            + str(depth).encode()
        )
        sub = rnd.choice([b"mixed", b"alternative", b"related", b"Mixed", b"digest"])
        q = b'"' + b + b'"' if (b" " in b or b"=" in b or rnd.random() < 0.5) else b
        h.append(
            b"Content-Type: multipart/"
            + sub
            + b";"
            + rnd.choice([b" ", b"\n\t"])
            + b"boundary="
            + q
        )
        body = (
            b"This is a multi-part message in MIME format.\n"
            if rnd.random() < 0.5
            else b""
        )
        for _ in range(rnd.randint(0, 3)):
            body += b"--" + b + b"\n" + part(rnd, depth + 1)
            body += b"\n" if rnd.random() < 0.9 else b""
        if rnd.random() < 0.9:
            body += b"--" + b + b"--\n" + (b"epilogue\n" if rnd.random() < 0.3 else b"")
    elif depth < 3 and r < 0.4:
        h.append(
            b"Content-Type: message/rfc822" + rnd.choice([b"", b'; name="fwd.eml"'])
        )
        if rnd.random() < 0.5:
            h.append(b'Content-Disposition: attachment; filename="fwd.eml"')
        body = part(rnd, depth + 1, top=True)
    else:
        ct = rnd.choice(
            [
                None,
                b"text/plain",
                b"text/plain; charset=utf-8; format=flowed",
                b'TEXT/HTML; CHARSET="ISO-8859-1"',
                b'application/octet-stream; name="a.bin"',
                b"image/png; name*=utf-8''%C3%A9.png",
                b"text/calendar; method=REQUEST; charset=UTF-8",
            ]
        )
        if ct:
            h.append(b"Content-Type: " + ct)
        if rnd.random() < 0.4:
            h.append(
                b"Content-Transfer-Encoding: "
                + rnd.choice([b"base64", b"quoted-printable", b"8bit", b"7BIT"])
            )
        if rnd.random() < 0.2:
            h.append(b"Content-ID: <cid" + str(depth).encode() + b"@x>")
        if rnd.random() < 0.2:
            h.append(
                b"Content-Disposition: "
                + rnd.choice(
                    [
                        b"inline",
                        b'attachment; filename="r\xc3\xa9sum\xc3\xa9.pdf"',
                        b'attachment;\n filename*0="long"; filename*1="name.txt"',
                    ]
                )
            )
        if rnd.random() < 0.1:
            h.append(b"Content-Description: " + rnd.choice([b"a file", b"caf\xc3\xa9"]))
        if rnd.random() < 0.1:
            h.append(b"Content-Language: en, de")
        if rnd.random() < 0.05:
            h.append(b"Content-Location: http://x/y")
        body = body_lines(rnd)
    rnd.shuffle(h)
    return b"\n".join(h) + (b"\n" if h else b"") + b"\n" + body


def structured(rnd: random.Random) -> bytes:
    m = part(rnd, 0, top=True)
    return m.replace(b"\n", b"\r\n") if rnd.random() < 0.3 else m


def compare_with_dovecot(messages: list[bytes]) -> None:
    spec = importlib.util.spec_from_file_location("capture_dovecot", CAPTURE)
    assert spec is not None and spec.loader is not None
    capture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(capture)
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


def test_random_soup_matches_dovecot() -> None:
    rnd = random.Random(20261127)
    compare_with_dovecot([soup(rnd) for _ in range(30)])


def test_random_structured_messages_match_dovecot() -> None:
    rnd = random.Random(1127)
    compare_with_dovecot([structured(rnd) for _ in range(30)])
