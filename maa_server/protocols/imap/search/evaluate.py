"""Evaluate a SearchProgram over the session's view of a mailbox.

Like Dovecot's index-search.c (search_match_next), each message is decided
at the cheapest level that can: first what the index knows (flags, UID,
size, dates, modseq), then the header fields the index caches with the
message structure (Subject, Date, Message-ID, ...), and only then the file
(Mailbox.read_message runs off the event loop; the MIME work for big
messages runs in a worker thread too). Each pass is three-valued: a key that
needs more knowledge is "unknown" and the next level is tried.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import re
import time
from collections.abc import Collection, Sequence

from maa_server.protocols.imap.search import program as P
from maa_server.protocols.imap.search.sort import Sexp, parse_envelope
from maa_server.protocols.imap.search.text import (
    all_headers_text,
    fold,
    header_fields,
    header_haystacks,
    write_addresses,
)
from maa_server.storage.interface import (
    Mailbox,
    MessageInfo,
    MessageStructure,
    NoSuchMessage,
)
from maa_server.storage.message import SEARCH_HEADER_FIELDS, body_text
from maa_server.storage.message.address import Address
from maa_server.storage.message.headers import HeaderField, field_text, find_fields
from maa_server.storage.message.parser import MimePart, parse_mime
from maa_server.storage.message.text import verbatim_text_parts

THREAD_THRESHOLD = 256 * 1024
YIELD_EVERY = 2000
_ENCODED = re.compile(rb"content-transfer-encoding[ \t]*:[ \t]*(?:base64|quoted-printable)",
                      re.IGNORECASE)
_UNFOLD = re.compile(rb"\r?\n(?=[ \t])")


# Levels of what is known about a message while deciding.
INDEX = 0  # flags, UID, size, dates, modseq (MessageInfo)
STRUCTURE = 1  # + the decoded header fields the index caches (MessageStructure.headers)
CONTENT = 2  # + the message file


class _Message:
    """One message during evaluation: index data now, the rest on demand."""

    __slots__ = ("seq", "info", "recent", "raw", "structure", "_fields", "_body", "_text",
                 "_cache", "_plain", "_envelope", "_mime")

    def __init__(self, seq: int, info: MessageInfo, recent: bool) -> None:
        self.seq = seq
        self.info = info
        self.recent = recent
        self.raw: bytes | None = None
        self.structure: MessageStructure | None = None
        self._fields: list[HeaderField] | None = None
        self._body: str | None = None
        self._text: str | None = None
        self._cache: dict[str, list[str] | None] = {}
        self._plain: bytes | None = None
        self._envelope: list[Sexp] | None = None
        self._mime: MimePart | None = None

    def envelope_addresses(self, name: str) -> str | None:
        """The folded, Dovecot-written address list of a From/To/Cc/Bcc
        field from the cached ENVELOPE, or None when the message has none."""
        if self._envelope is None:
            self._envelope = parse_envelope(self.structure.envelope) if self.structure else []
        index = ENVELOPE_ADDRESSES[name]
        if len(self._envelope) <= index or not isinstance(self._envelope[index], list):
            return None
        entries = self._envelope[index]
        assert isinstance(entries, list)
        addresses = [Address(*(v if isinstance(v, bytes) else None for v in e))
                     for e in entries if isinstance(e, list) and len(e) == 4]
        return fold(write_addresses(addresses))

    def surely_lacks(self, needle: str) -> bool:
        """A cheap exact test that saves the MIME work for most misses: in
        a pure-ASCII message without encoded words or base64/QP parts the
        decoded text is the raw text, so an ASCII key absent from the raw
        bytes (folds undone, upper-cased as fold() does) cannot match."""
        if not needle.isascii() or "\r" in needle or "\n" in needle:
            return False
        if self._plain is None:
            raw = self.raw or b""
            if raw.isascii() and b"=?" not in raw and not _ENCODED.search(raw):
                self._plain = _UNFOLD.sub(b"", raw).upper()  # fold() of ASCII
            else:
                self._plain = b""
        return bool(self._plain) and needle.encode("ascii") not in self._plain

    @property
    def fields(self) -> list[HeaderField]:
        if self._fields is None:
            self._fields = header_fields(self.raw or b"")
        return self._fields

    def header(self, name: str) -> list[str] | None:
        if name not in self._cache:
            self._cache[name] = header_haystacks(self.fields, name)
        return self._cache[name]

    @property
    def mime(self) -> MimePart:
        """The part tree, parsed once for both the headers and the body."""
        if self._mime is None:
            self._mime = parse_mime(self.raw or b"")
        return self._mime

    def body(self) -> str:
        if self._body is None:
            self._body = fold(body_text(self.raw or b"", self.mime))
        return self._body

    def headers_text(self) -> str:
        if self._text is None:
            self._text = fold(all_headers_text(self.raw or b"", self.mime))
        return self._text

    def verbatim_hit(self, needle: str) -> bool:
        """A cheap exact test for most hits: the decoded text of a plain
        ASCII text part is its raw bytes, and fold() of ASCII is upper(), so
        an ASCII key found there is found in body() too."""
        if not needle.isascii() or self._body is not None:
            return False
        key = needle.encode("ascii")
        return any(key in data.upper() for data in verbatim_text_parts(self.raw or b"", self.mime))

    def has_body(self, needle: str) -> bool:
        return self.verbatim_hit(needle) or needle in self.body()

    def has_text(self, needle: str) -> bool:
        """SEARCH TEXT: every header block (parts and embedded messages
        included), then the decoded text parts; nothing is decoded when a
        plain text part already holds the key, the body only when the
        headers do not match."""
        return self.verbatim_hit(needle) or needle in self.headers_text() or needle in self.body()


class _Context:
    def __init__(self, last_seq: int, last_uid: int, saved: Collection[int] | None,
                 now: float) -> None:
        self.last_seq = last_seq
        self.last_uid = last_uid
        self.saved = saved
        self.now = int(now)


def _local_day(timestamp: float) -> datetime.date:
    # Internal dates are compared in the server's time zone, as Dovecot does
    # for Maildir mtimes (index-search.c: date + timezone offset).
    return datetime.date.fromtimestamp(int(timestamp))


def _compare_day(op: str, day: datetime.date, wanted: datetime.date | None) -> bool:
    if wanted is None:
        return False
    if op == "before":
        return day < wanted
    if op == "on":
        return day == wanted
    return day >= wanted


EPOCH = datetime.date(1970, 1, 1)


def _sent_day(value: str | None) -> datetime.date:
    """The calendar day of a Date: value as written (its own zone). Without
    a usable Date: field Dovecot's mail_get_date() gives 0, so the message
    counts as sent on 1-Jan-1970 (captured: SENTBEFORE 1-Jan-2030 finds it)."""
    if not value:
        return EPOCH
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return EPOCH
    try:
        return datetime.date(parsed[0], parsed[1], parsed[2])
    except ValueError:
        return EPOCH


# ENVELOPE positions of the address fields it holds as parsed from the
# message (Sender and Reply-To are not: the envelope fills them from From).
ENVELOPE_ADDRESSES = {"from": 2, "to": 5, "cc": 6, "bcc": 7}


def _cached(key: P.Header) -> bool:
    """Can the index cache answer this key? Plain fields from
    MessageStructure.headers; address fields from the ENVELOPE, whose
    addresses are parsed as Dovecot parses them (only a non-empty key: an
    empty one tests that the field exists, which an empty field also does)."""
    if key.address:
        return key.name in ENVELOPE_ADDRESSES and bool(key.needle)
    return key.name in SEARCH_HEADER_FIELDS


def _decide(key: P.Key, msg: _Message, ctx: _Context, level: int) -> bool | None:
    """True/False, or None when a higher level of knowledge is needed."""
    info = msg.info
    if isinstance(key, P.All):
        return True
    if isinstance(key, P.HasFlag):
        if key.keyword:
            wanted = key.flag.lower()
            return any(f.lower() == wanted for f in info.flags if not f.startswith("\\"))
        return key.flag in info.flags
    if isinstance(key, P.Recent):
        return msg.recent
    if isinstance(key, P.InSequence):
        return key.numbers.contains(msg.seq, ctx.last_seq)
    if isinstance(key, P.InUids):
        if key.uids.saved:
            return ctx.saved is not None and info.uid in ctx.saved
        return key.uids.contains(info.uid, ctx.last_uid)
    if isinstance(key, P.Size):
        return info.size > key.size if key.larger else info.size < key.size
    if isinstance(key, P.Age):
        limit = ctx.now - key.seconds
        return info.internal_date <= limit if key.older else info.internal_date >= limit
    if isinstance(key, P.ModSeq):
        return info.modseq >= key.modseq
    if isinstance(key, P.DateKey):
        if not key.sent:
            return _compare_day(key.op, _local_day(info.internal_date), key.day)
        if level == STRUCTURE and msg.structure is not None:
            day = _sent_day(msg.structure.headers.get("date"))
        elif level == CONTENT:
            dates = find_fields(msg.fields, "date")
            day = _sent_day(field_text(dates[0].value) if dates else None)
        else:
            return None
        return _compare_day(key.op, day, key.day)
    if isinstance(key, P.Header):
        if level == STRUCTURE and msg.structure is not None and key.address and _cached(key):
            written = msg.envelope_addresses(key.name)
            return written is not None and key.needle in written
        value = msg.structure.headers.get(key.name) if msg.structure is not None else None
        if level == STRUCTURE and msg.structure is not None and _cached(key) \
                and (value is None or "\t" not in value):
            # (A tab may be a folded line's, which Dovecot's search sees as a
            # space: such values are left to the file.)
            haystacks = None if value is None else [fold(value)]
        elif level == CONTENT:
            haystacks = msg.header(key.name)
        else:
            return None
        if haystacks is None:
            return False  # no such field: even an empty key does not match
        return not key.needle or any(key.needle in h for h in haystacks)
    if isinstance(key, P.Body):
        if level < CONTENT:
            return None
        return not msg.surely_lacks(key.needle) and msg.has_body(key.needle)
    if isinstance(key, P.Text):
        if level < CONTENT:
            return None
        return not msg.surely_lacks(key.needle) and msg.has_text(key.needle)
    if isinstance(key, P.Not):
        inner = _decide(key.key, msg, ctx, level)
        return None if inner is None else not inner
    if isinstance(key, P.Or):
        left = _decide(key.left, msg, ctx, level)
        if left is True:
            return True
        right = _decide(key.right, msg, ctx, level)
        if right is True:
            return True
        if left is False and right is False:
            return False
        return None
    if isinstance(key, P.And):
        # Cheap keys first: a False from flags saves the content work of
        # the others (Dovecot's search_match_next does the same by levels).
        result: bool | None = True
        for sub in key.keys:
            verdict = _decide(sub, msg, ctx, level)
            if verdict is False:
                return False
            if verdict is None:
                result = None
        return result
    raise TypeError(f"unknown search key {key!r}")


def _full(key: P.Key, msg: _Message, ctx: _Context) -> bool:
    return bool(_decide(key, msg, ctx, CONTENT))


async def evaluate_search(
    program: P.SearchProgram,
    view: Sequence[tuple[int, MessageInfo]],
    mailbox: Mailbox,
    *,
    recent_uids: Collection[int],
    last_seq: int,
    last_uid: int,
    saved_uids: Collection[int] | None = None,
    now: float | None = None,
) -> list[int]:
    """Sequence numbers of the matching messages of `view` ((seq, info)
    pairs in the session's order), ascending.

    `saved_uids` is the RFC 5182 saved result that `$` stands for (None: no
    saved result, `$` matches nothing, as Dovecot answers). A message
    expunged meanwhile (its file gone) simply does not match.
    """
    ctx = _Context(last_seq, last_uid, saved_uids, time.time() if now is None else now)
    root = program.root
    # Worth asking the index cache first? Only if some key can be answered there.
    use_structure = any((isinstance(n, P.Header) and _cached(n))
                        or (isinstance(n, P.DateKey) and n.sent) for n in program.nodes)
    matches: list[int] = []
    for count, (seq, info) in enumerate(view, 1):
        if count % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a 100,000-message SEARCH must not starve other sessions
        msg = _Message(seq, info, info.uid in recent_uids)
        decided = _decide(root, msg, ctx, INDEX)
        if decided is None and use_structure:
            try:
                msg.structure = await mailbox.structure(info.uid)
            except NoSuchMessage:
                continue
            decided = _decide(root, msg, ctx, STRUCTURE)
        if decided is None:
            try:
                msg.raw = await mailbox.read_message(info.uid)
            except NoSuchMessage:
                continue
            if len(msg.raw) > THREAD_THRESHOLD:
                decided = await asyncio.to_thread(_full, root, msg, ctx)
            else:
                decided = _full(root, msg, ctx)
        if decided:
            matches.append(seq)
    return matches
