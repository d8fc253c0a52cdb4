"""Deterministic generator of realistic messages and the Maildirs both servers
are measured on.

Same seed, same bytes: both servers get identical copies. Messages run from
~1 KB to ~200 KB: plain text, multipart/alternative, mixed with base64
attachments, non-ASCII (RFC 2047) headers.
"""

from __future__ import annotations

import base64
import os
import random
import time
from pathlib import Path

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "mail", "server", "python", "dovecot", "imap", "message", "folder", "inbox", "meeting", "report", "budget", "draft", "review", "invoice", "schedule", "project", "release", "update", "notes", "weekly", "team", "data", "network"]
NAMES = [("Alice Example", "alice@example.org"), ("Bob Müller", "bob@example.de"),
         ("Chloé Dupont", "chloe@example.fr"), ("Dmitri Иванов", "dmitri@example.ru"),
         ("Eve", "eve@example.com"), ("山田太郎", "taro@example.jp")]


def _encode_word(text: str) -> str:
    if text.isascii():
        return text
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def _address(rng: random.Random) -> str:
    name, addr = rng.choice(NAMES)
    return f"{_encode_word(name)} <{addr}>"


def _paragraphs(rng: random.Random, size: int) -> str:
    out: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        out.append(line)
        total += len(line) + 2
    return "\r\n".join(out) + "\r\n"


def make_message(rng: random.Random, index: int) -> bytes:
    """One message; the size class is drawn so that most are small, a few big."""
    kind = rng.random()
    target = int(rng.choice((1, 2, 4, 8, 16, 32, 64, 200)) * 1024 * rng.uniform(0.7, 1.0))
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1_700_000_000 + index * 97))
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))
    if rng.random() < 0.3:
        subject += " — résumé ünïcödé"
    headers = (
        f"Return-Path: <{rng.choice(NAMES)[1]}>\r\n"
        f"Message-ID: <{index}.{rng.getrandbits(48):x}@bench.example>\r\n"
        f"Date: {date}\r\n"
        f"From: {_address(rng)}\r\n"
        f"To: {_address(rng)}\r\n"
        + (f"Cc: {_address(rng)}, {_address(rng)}\r\n" if rng.random() < 0.3 else "")
        + f"Subject: {_encode_word(subject)}\r\n"
        "MIME-Version: 1.0\r\n"
    )
    if kind < 0.4 or target < 3000:
        body = _paragraphs(rng, target)
        return (headers + "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n" + body).encode()
    boundary = f"=_bench_{index}_{rng.getrandbits(32):x}"
    text = _paragraphs(rng, min(target, 4000))
    if kind < 0.7:
        html = "<html><body><p>" + text.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
        parts = [("text/plain; charset=utf-8", "8bit", text),
                 ("text/html; charset=utf-8", "8bit", html)]
        ctype = "multipart/alternative"
    else:
        blob = rng.randbytes(max(target - len(text), 512) * 3 // 4)
        b64 = base64.encodebytes(blob).decode().replace("\n", "\r\n")
        parts = [("text/plain; charset=utf-8", "8bit", text),
                 ((f'application/octet-stream; name="file{index}.bin"\r\n'
                   f'Content-Disposition: attachment; filename="file{index}.bin"'), "base64", b64)]
        ctype = "multipart/mixed"
    body = "This is a multi-part message in MIME format.\r\n"
    for ptype, cte, content in parts:
        body += (f"\r\n--{boundary}\r\nContent-Type: {ptype}\r\n"
                 f"Content-Transfer-Encoding: {cte}\r\n\r\n{content}")
    body += f"\r\n--{boundary}--\r\n"
    return (headers + f'Content-Type: {ctype}; boundary="{boundary}"\r\n\r\n' + body).encode()


def messages(count: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [make_message(rng, i) for i in range(count)]


def write_maildir(root: Path, count: int, seed: int = 1, uid: int | None = None,
                  gid: int | None = None) -> int:
    """A LAYOUT=fs folder with `count` messages dropped into cur/ (as an MDA
    would, with no dovecot-uidlist: each server builds its own). Returns bytes."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    total = 0
    rng = random.Random(seed)
    base = 1_700_000_000
    for i in range(count):
        data = make_message(rng, i)
        name = f"{base + i}.M{i}P1.bench,S={len(data)},W={len(data)}:2,S"
        path = root / "cur" / name
        path.write_bytes(data)
        os.utime(path, (base + i, base + i))
        total += len(data)
    if uid is not None:
        for dirpath, dirnames, filenames in os.walk(root):
            os.chown(dirpath, uid, gid if gid is not None else -1)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), uid, gid if gid is not None else -1)
    return total


def cached_maildir(cache: Path, count: int, seed: int = 1) -> tuple[Path, int]:
    """A generated folder of `count` messages kept under `cache` between runs
    (100,000 messages take minutes to write); returns (path, bytes). Servers
    get hard-linked copies: Maildir files are never rewritten in place, only
    renamed, so the copies stay independent."""
    folder = cache / f"maildir-{count}-seed{seed}"
    stamp = folder / ".complete"
    if stamp.exists():
        return folder, int(stamp.read_text())
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    total = write_maildir(folder, count, seed)
    stamp.write_text(str(total))
    return folder, total


def link_copy(source: Path, dest: Path, uid: int, gid: int) -> None:
    """Hard-link copy of a generated folder (cur/new/tmp only), owned by uid:gid."""
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        os.chown(dest / sub, uid, gid)
        for entry in os.scandir(source / sub):
            os.link(entry.path, dest / sub / entry.name)
    os.chown(dest, uid, gid)
