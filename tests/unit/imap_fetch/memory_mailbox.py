"""Test double: an in-memory Mailbox holding the fixture messages.

Only what render_fetch and evaluate_search touch is real (messages, get,
read_message, structure via the MIME layer, keywords); the rest refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from maa_server.storage.interface import Mailbox, MessageInfo, MessageStructure, NoSuchMessage
from tests.unit.imap_fetch.dovecot_fixtures import (
    KEYWORDS,
    MAILBOX,
    MAILBOX_EXTRA,
    MAILBOX_THREAD,
    THREAD_MESSAGES,
    extra_flags,
    message_bytes,
    message_flags,
)


class MemoryMailbox(Mailbox):
    def __init__(self, infos: list[MessageInfo], contents: dict[int, bytes],
                 keywords: Sequence[str] = ()) -> None:
        self.name = "INBOX"
        self.uidvalidity = 1
        self.version = 1
        self.infos = infos
        self.contents = contents
        self._keywords = list(keywords)
        self.reads: list[int] = []  # UIDs whose file was read, in order
        self.structures: list[int] = []  # UIDs whose cached structure was asked for

    @property
    def uidnext(self) -> int:
        return max((i.uid for i in self.infos), default=0) + 1

    @property
    def highest_modseq(self) -> int:
        return max((i.modseq for i in self.infos), default=1)

    @property
    def keywords(self) -> Sequence[str]:
        return self._keywords

    async def sync(self) -> None:
        return None

    def messages(self) -> Sequence[MessageInfo]:
        return list(self.infos)

    def get(self, uid: int) -> MessageInfo | None:
        return next((i for i in self.infos if i.uid == uid), None)

    def claim_recent(self) -> frozenset[int]:
        return frozenset()

    async def wait_for_change(self, timeout: float) -> bool:
        return False

    async def read_message(self, uid: int) -> bytes:
        if uid not in self.contents:
            raise NoSuchMessage("gone")
        self.reads.append(uid)
        return self.contents[uid]

    async def structure(self, uid: int) -> MessageStructure:
        from maa_server.storage.message import parse_structure

        if uid not in self.contents:
            raise NoSuchMessage("gone")
        self.structures.append(uid)  # an index cache hit: no file read
        return parse_structure(self.contents[uid])

    async def append(self, data: bytes, flags: Iterable[str] = (),
                     internal_date: float | None = None) -> int:
        raise NotImplementedError("read-only test double")

    async def store_flags(self, uids: Iterable[int], flags: Iterable[str], mode: str,
                          unchanged_since: int | None = None
                          ) -> tuple[list[MessageInfo], list[int]]:
        raise NotImplementedError("read-only test double")

    async def expunge(self, uids: Iterable[int] | None = None) -> list[int]:
        raise NotImplementedError("read-only test double")

    async def copy_to(self, uids: Iterable[int], dest: Mailbox) -> list[tuple[int, int]]:
        raise NotImplementedError("read-only test double")

    async def remove(self, uids: Iterable[int]) -> list[int]:
        raise NotImplementedError("read-only test double")


def fixture_mailbox(modseq: int = 4, extra: bool | str = False) -> MemoryMailbox:
    """The captured messages (the six of the main scenarios, the five of
    "extra" or, with extra="thread", the twelve of "thread"), UIDs from 1,
    flags and dates as Dovecot saw them."""
    infos = []
    contents = {}
    table = MAILBOX_THREAD if extra == "thread" else MAILBOX_EXTRA if extra else MAILBOX
    for i, (name, _, _, mtime) in enumerate(table):
        if extra == "thread":
            raw, flags = (THREAD_MESSAGES / name).read_bytes(), frozenset[str]()
        else:
            raw = message_bytes(i, bool(extra))
            flags = extra_flags(i) if extra else message_flags(i)
        infos.append(MessageInfo(uid=i + 1, flags=flags, internal_date=float(mtime),
                                 size=len(raw.replace(b"\n", b"\r\n")), modseq=modseq))
        contents[i + 1] = raw
    return MemoryMailbox(infos, contents, KEYWORDS)
