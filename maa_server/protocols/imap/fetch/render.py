"""Render one `* N FETCH (...)` response (RFC 3501 7.4.2) the way Dovecot does.

Item order is Dovecot's (src/imap/imap-fetch.c, imap_fetch_add_handler):
for UID FETCH the UID comes first; then the "buffered" items (UID, FLAGS,
INTERNALDATE, RFC822.SIZE, MODSEQ) in request order; then MODSEQ implied by
CHANGEDSINCE, then FLAGS added because a BODY[] fetch set \\Seen; then
everything else (ENVELOPE, BODY, BODYSTRUCTURE, RFC822*, sections) in
request order. Body data always goes as a literal, `~{n}` (RFC 3516 literal8)
for decoded BINARY content. All of this was captured from Dovecot 2.3.19 in
tests/unit/imap_fetch/fixtures/dovecot_fetch.json.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

from maa_server.protocols.imap.fetch.binary import binary_content
from maa_server.protocols.imap.fetch.items import (
    CONTENT_ITEMS,
    FetchItem,
    FetchRequest,
    SectionItem,
    SimpleItem,
)
from maa_server.protocols.imap.fetch.preview import preview_text
from maa_server.storage.interface import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    RECENT,
    SEEN,
    SYSTEM_FLAGS,
    Mailbox,
    MessageInfo,
)
from maa_server.storage.message import get_section, parse_mime, section_of
from maa_server.storage.message.imap_quote import nstring
from maa_server.storage.message.parser import MimePart
from maa_server.storage.message.sections import to_imap

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Dovecot lists system flags in this order, then \Recent, then keywords
# (imap-util.c imap_write_flags).
FLAG_ORDER = (ANSWERED, FLAGGED, DELETED, SEEN, DRAFT)

# Above this size the MIME work for sections runs in a thread, so that one
# big message does not stall every other session on the loop.
THREAD_THRESHOLD = 1 << 20


def format_flag_list(flags: Iterable[str], recent: bool, keywords: Sequence[str] = ()) -> str:
    """`(\\Answered \\Seen \\Recent $Forwarded)`: system flags in Dovecot's order,
    \\Recent, then keywords in the mailbox's keyword order."""
    flags = frozenset(flags)
    out = [f for f in FLAG_ORDER if f in flags]
    if recent:
        out.append(RECENT)
    position = {k: i for i, k in enumerate(keywords)}
    extra = [f for f in flags if f not in SYSTEM_FLAGS and f != RECENT]
    extra.sort(key=lambda k: (position.get(k, len(position)), k))
    out.extend(extra)
    return "(" + " ".join(out) + ")"


def format_internal_date(timestamp: float) -> str:
    """`"03-Jun-2024 08:00:05 +0000"` in the server's local time zone, as
    Dovecot shows a Maildir mtime (imap-date.c imap_to_datetime; note the
    zero-padded day, not RFC 3501's space padding)."""
    t = time.localtime(int(timestamp))
    offset = (t.tm_gmtoff or 0) // 60
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset)
    zone = f"{sign}{offset // 60:02d}{offset % 60:02d}"
    return (f'"{t.tm_mday:02d}-{MONTHS[t.tm_mon - 1]}-{t.tm_year:04d} '
            f'{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {zone}"')


def ordered_items(req: FetchRequest, *, uid_command: bool, flags_changed: bool) -> list[FetchItem]:
    """The items in the order Dovecot answers them."""
    buffered: list[FetchItem] = []
    rest: list[FetchItem] = []
    if uid_command:
        buffered.append(SimpleItem("UID"))
    for item in req.items:
        if isinstance(item, SimpleItem) and item.buffered:
            if uid_command and item.name == "UID":
                continue
            buffered.append(item)
        else:
            rest.append(item)
    names = {i.name for i in buffered if isinstance(i, SimpleItem)}
    if req.changedsince is not None and "MODSEQ" not in names:
        buffered.append(SimpleItem("MODSEQ"))
    if flags_changed and "FLAGS" not in names:
        buffered.append(SimpleItem("FLAGS"))
    return buffered + rest


def _literal(data: bytes, binary: bool = False) -> bytes:
    return (b"~{%d}\r\n" if binary else b"{%d}\r\n") % len(data) + data


def _partial(data: bytes, item: SectionItem) -> bytes:
    if item.partial_start is None:
        return data
    start = item.partial_start
    if item.partial_length is None:
        return data[start:]
    return data[start:start + item.partial_length]


class _Sections:
    """Sections of one message: the MIME tree is built at most once, and
    not at all for what the top-level header answers (get_section's fast
    path for the message list's HEADER.FIELDS)."""

    def __init__(self, raw: bytes, crlf: bool = False) -> None:
        self.raw = raw
        # The file is known to have CRLF line ends only (its size equals
        # its virtual size, as Dovecot's index tells it): BODY[] is then
        # the file as it is, without the two counting passes of to_crlf
        # (40% of a FETCH 1:* BODY[] in the profile).
        self.crlf = crlf
        self._root: MimePart | None = None

    def get(self, part: tuple[int, ...], spec: str, fields: list[str]) -> bytes:
        if self.crlf and not part and not spec:
            return self.raw.replace(b"\x00", b"\x80") if b"\x00" in self.raw else self.raw
        if not part and spec != "MIME":
            return get_section(self.raw, part, spec, fields)
        if self._root is None:
            self._root = parse_mime(self.raw)
        return section_of(self.raw, self._root, part, spec, fields)


def _section_bytes(sections: _Sections, item: SectionItem) -> tuple[bytes, bool]:
    """The (unpartialled) data of a BODY/BINARY section and whether it is
    literal8 material. Part number 0 names nothing: Dovecot sends an empty
    literal (captured: BODY[0], BODY[1.0])."""
    if any(n == 0 for n in item.part):
        return b"", False
    if item.kind == "BODY" or item.spec in ("HEADER", "MIME"):
        if (not item.part and not item.spec and item.partial_start is not None
                and item.partial_length is not None):
            # BODY[]<start.length> of a big message: convert only the prefix
            # it needs (CRLF conversion never shortens, so it is enough).
            end = item.partial_start + item.partial_length
            return to_imap(sections.raw[:end]), False
        return sections.get(item.part, item.spec, list(item.fields)), False
    # BINARY / BINARY.SIZE: undo the transfer encoding of the part.
    if not item.part or item.spec == "TEXT":
        header = sections.get(item.part, "HEADER", [])
        body = sections.get(item.part, "TEXT", [])
        return binary_content(header, body, include_header=not item.spec and not item.part)
    header = sections.get(item.part, "MIME", [])
    body = sections.get(item.part, "", [])
    return binary_content(header, body, include_header=False)


def _render_sections(raw: bytes, items: list[SectionItem], crlf: bool = False) -> list[bytes]:
    """Every section's response bytes (name, literal), computed together so a
    big message is walked in one worker-thread hop."""
    sections = _Sections(raw, crlf)
    cache: dict[tuple[object, ...], tuple[bytes, bool]] = {}
    out: list[bytes] = []
    for item in items:
        key = (item.kind == "BODY", item.part, item.spec, tuple(f.lower() for f in item.fields),
               item.partial_start, item.partial_length)
        if key not in cache:
            cache[key] = _section_bytes(sections, item)
        data, binary = cache[key]
        if item.kind == "BINARY.SIZE":
            out.append(b"%s %d" % (item.response_name.encode("ascii"), len(data)))
        else:
            name = item.response_name.encode("ascii", "replace")
            literal8 = binary and item.kind == "BINARY"
            out.append(name + b" " + _literal(_partial(data, item), literal8))
    return out


def _simple_content(sections: _Sections, name: str) -> bytes:
    if name in ("PREVIEW", "SNIPPET"):
        text = nstring(preview_text(sections.raw).encode("utf-8"))
        # Dovecot's draft-era SNIPPET names its algorithm in the answer.
        return b"PREVIEW " + text if name == "PREVIEW" else b"SNIPPET (FUZZY " + text + b")"
    spec = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[name]
    return name.encode("ascii") + b" " + _literal(sections.get((), spec, []))


def _render_content(raw: bytes, items: list[FetchItem], crlf: bool = False) -> list[bytes]:
    rendered = iter(_render_sections(raw, [i for i in items if isinstance(i, SectionItem)], crlf))
    sections = _Sections(raw, crlf)
    return [next(rendered) if isinstance(i, SectionItem) else _simple_content(sections, i.name)
            for i in items]


async def render_fetch(
    req: FetchRequest,
    seq: int,
    info: MessageInfo,
    mailbox: Mailbox,
    *,
    uid_command: bool,
    recent: bool,
    condstore: bool,
    flags_changed: bool = False,
) -> bytes:
    """The whole `* seq FETCH (...)\\r\\n` for one message, literals included.

    `flags_changed`: this FETCH just set \\Seen (req.sets_seen), so FLAGS is
    sent even if not asked for (RFC 3501 6.4.5; Dovecot
    flags_show_only_seen_changes). `condstore` is accepted for the session's
    convenience; Dovecot adds MODSEQ only when asked or with CHANGEDSINCE
    (captured with CONDSTORE enabled: `FETCH 1 (FLAGS)` has no MODSEQ).
    Raises NoSuchMessage if the file vanished, UnknownCte for a BINARY
    fetch of an encoding we cannot undo.
    """
    del condstore  # see docstring
    items = ordered_items(req, uid_command=uid_command, flags_changed=flags_changed)
    structure = await mailbox.structure(info.uid) if req.needs_structure else None
    content_items = [i for i in items if isinstance(i, SectionItem) or i.name in CONTENT_ITEMS]
    content: list[bytes] = []
    if content_items:
        raw = await mailbox.read_message(info.uid)
        crlf = len(raw) == info.size  # RFC822.SIZE counts CRLFs: no bare LF in the file
        if len(raw) > THREAD_THRESHOLD:
            content = await asyncio.to_thread(_render_content, raw, content_items, crlf)
        else:
            content = _render_content(raw, content_items, crlf)
    pending = iter(content)

    parts: list[bytes] = []
    for item in items:
        if isinstance(item, SectionItem):
            parts.append(next(pending))
            continue
        name = item.name
        if name == "UID":
            parts.append(b"UID %d" % info.uid)
        elif name == "FLAGS":
            flags = format_flag_list(info.flags, recent, mailbox.keywords)
            parts.append(b"FLAGS " + flags.encode("utf-8"))
        elif name == "INTERNALDATE":
            date = format_internal_date(info.internal_date)
            parts.append(b"INTERNALDATE " + date.encode("ascii"))
        elif name == "RFC822.SIZE":
            parts.append(b"RFC822.SIZE %d" % info.size)
        elif name == "MODSEQ":
            parts.append(b"MODSEQ (%d)" % info.modseq)
        elif name == "ENVELOPE":
            assert structure is not None
            parts.append(b"ENVELOPE " + structure.envelope)
        elif name == "BODY":
            assert structure is not None
            parts.append(b"BODY " + structure.body)
        elif name == "BODYSTRUCTURE":
            assert structure is not None
            parts.append(b"BODYSTRUCTURE " + structure.bodystructure)
        else:  # RFC822, RFC822.HEADER, RFC822.TEXT, PREVIEW, SNIPPET
            parts.append(next(pending))
    return b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n"
