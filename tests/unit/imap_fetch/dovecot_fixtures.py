"""Load the real Dovecot's captured answers (see capture_dovecot.py)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MESSAGES = FIXTURES / "messages"

# (file, maildir flags, keywords, internal date) exactly as capture_dovecot.py stores them.
MAILBOX = [
    ("01-plain.eml", "S", [], 1717401605),
    ("02-multipart.eml", "", [], 1717540210),
    ("03-encoded.eml", "FR", ["$Forwarded"], 1717568100),
    ("04-forward.eml", "ST", [], 1717675201),
    ("05-headers-only.eml", "", ["Project_X"], 1717804799),
    ("06-draft.eml", "DS", [], 1717830000),
]
KEYWORDS = ["$Forwarded", "Project_X"]
# A second mailbox (scenario "extra"): folded and 8-bit headers, groups,
# routes, a base64 text body, no Date, nested message/rfc822.
EXTRA_MESSAGES = FIXTURES / "messages-extra"
MAILBOX_EXTRA = [
    ("01-folded.eml", "", [], 1718013600),  # 2024-06-10 10:00:00 UTC
    ("02-nodate.eml", "S", [], 1718100000),  # 2024-06-11 10:00:00 UTC
    ("03-nested.eml", "", [], 1718186400),  # 2024-06-12 10:00:00 UTC
    ("04-reply.eml", "", [], 1718186400),  # same internal date as 3: ties
    ("05-hello.eml", "S", [], 1717900000),  # 2024-06-09 02:26:40 UTC: arrived earlier
]
LETTERS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}

_TIMING = re.compile(rb" \(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)\.")


@dataclass(frozen=True)
class Exchange:
    command: bytes
    response: bytes  # every line, literals included, timing suffix removed

    @property
    def tagged(self) -> bytes:
        """The final tagged line without the tag."""
        last = self.response.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1]
        return last.split(b" ", 1)[1]

    @property
    def untagged(self) -> bytes:
        """Everything before the tagged line."""
        body = self.response.rstrip(b"\r\n")
        cut = body.rfind(b"\r\n")
        return body[: cut + 2] if cut >= 0 else b""


def load(name: str) -> list[Exchange]:
    data = json.loads((FIXTURES / f"dovecot_{name}.json").read_text())
    return [Exchange(r["command"].encode("latin-1"),
                     _TIMING.sub(b".", r["response"].encode("latin-1"))) for r in data]


def message_flags(index: int) -> frozenset[str]:
    _, letters, keywords, _ = MAILBOX[index]
    return frozenset([LETTERS[c] for c in letters] + list(keywords))


# A third mailbox (scenario "thread"): reply chains, a missing parent, a
# duplicate Message-ID, subject merges, for THREAD.
THREAD_MESSAGES = FIXTURES / "messages-thread"
MAILBOX_THREAD = [(f"{n:02d}.eml", "", [], 1719800000 + 3600 * n) for n in range(1, 13)]


def message_bytes(index: int, extra: bool = False) -> bytes:
    if extra:
        return (EXTRA_MESSAGES / MAILBOX_EXTRA[index][0]).read_bytes()
    return (MESSAGES / MAILBOX[index][0]).read_bytes()


def extra_flags(index: int) -> frozenset[str]:
    _, letters, keywords, _ = MAILBOX_EXTRA[index]
    return frozenset([LETTERS[c] for c in letters] + list(keywords))
