"""render_fetch against the real Dovecot: replay every captured FETCH on the
same six messages and compare the untagged answers byte for byte."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.protocols.imap.errors import ImapError
from maa_server.protocols.imap.fetch import (
    format_flag_list,
    format_internal_date,
    parse_fetch_items,
    parse_fetch_modifiers,
    render_fetch,
)
from maa_server.protocols.imap.sequence import parse_sequence_set
from maa_server.protocols.imap.tokens import Atom
from maa_server.storage.interface import SEEN, MessageInfo
from tests.unit.imap_fetch.argtree import Unparsable, parse_args
from tests.unit.imap_fetch.dovecot_fixtures import Exchange, load
from tests.unit.imap_fetch.memory_mailbox import MemoryMailbox, fixture_mailbox


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Dovecot ran with TZ=UTC; INTERNALDATE is shown in local time."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def _expected(ex: Exchange, wants_modseq: bool) -> bytes:
    """Dovecot's untagged FETCH data without what the session adds on its
    own: the implicit-CONDSTORE `* OK [HIGHESTMODSEQ]` and the separate
    `* N FETCH (MODSEQ (m))` that follows a \\Seen change."""
    lines = ex.untagged.split(b"\r\n")
    modseq_only = re.compile(rb"^\* \d+ FETCH \(MODSEQ \(\d+\)\)$")
    kept = [line for line in lines
            if not line.startswith(b"* OK [HIGHESTMODSEQ")
            and (wants_modseq or not modseq_only.match(line))]
    return b"\r\n".join(kept)


async def replay(scenario: str) -> list[tuple[bytes, bytes, bytes]]:
    """(command, Dovecot's answer, ours) for every successful FETCH."""
    box = fixture_mailbox(extra=scenario == "extra")
    results = []
    for ex in load(scenario):
        words = ex.command.split(b" ")
        uid = words[0] == b"UID"
        if uid:
            words = words[1:]
        if words[0] == b"STORE" and words[2] == b"+FLAGS":
            flag = words[3].strip(b"()").decode()
            for seq in parse_sequence_set(words[1].decode()).resolve(len(box.infos)):
                info = box.infos[seq - 1]
                box.infos[seq - 1] = dataclasses.replace(
                    info, flags=info.flags | {flag}, modseq=box.highest_modseq + 1)
            continue
        if words[0] != b"FETCH" or not ex.tagged.startswith(b"OK"):
            continue
        try:
            tree = parse_args(b" ".join(words[2:]))
            mods = parse_fetch_modifiers(tree[1]) if len(tree) == 2 else None
            req = parse_fetch_items(tree[0], mods)
        except (Unparsable, ImapError) as exc:  # pragma: no cover - a fixture we mis-read
            raise AssertionError(f"{ex.command!r}: {exc}") from exc
        out = b""
        for seq in parse_sequence_set(words[1].decode()).resolve(len(box.infos)):
            info = box.infos[seq - 1]
            changed = False
            if req.sets_seen and SEEN not in info.flags:
                info = dataclasses.replace(info, flags=info.flags | {SEEN},
                                           modseq=box.highest_modseq + 1)
                box.infos[seq - 1] = info
                changed = True
            if req.changedsince is not None and info.modseq <= req.changedsince:
                continue
            out += await render_fetch(req, seq, info, box, uid_command=uid, recent=True,
                                      condstore=False, flags_changed=changed)
        results.append((ex.command, _expected(ex, req.wants_modseq), out))
    return results




@pytest.mark.parametrize("scenario", ["fetch", "condstore", "extra"])
async def test_every_fetch_answer_matches_dovecot(scenario: str) -> None:
    mismatches = [(cmd, theirs, ours) for cmd, theirs, ours in await replay(scenario)
                  if theirs != ours]
    assert not mismatches, "\n\n".join(
        f"{cmd!r}\n dovecot: {theirs!r}\n ours:    {ours!r}" for cmd, theirs, ours in mismatches)


# -- pieces that need no MIME parsing ---------------------------------------------

def test_flag_list_order_is_dovecots() -> None:
    flags = {"$Forwarded", "\\Seen", "\\Answered", "\\Flagged", "Project_X", "\\Draft", "\\Deleted"}
    assert format_flag_list(flags, recent=True, keywords=["$Forwarded", "Project_X"]) == (
        "(\\Answered \\Flagged \\Deleted \\Seen \\Draft \\Recent $Forwarded Project_X)")
    assert format_flag_list((), recent=False) == "()"
    assert format_flag_list({"zz", "aa"}, recent=False, keywords=["zz"]) == "(zz aa)"


def test_internal_date_is_zero_padded_like_dovecot() -> None:
    assert format_internal_date(1717401605) == '"03-Jun-2024 08:00:05 +0000"'
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    assert format_internal_date(1717401605) == '"03-Jun-2024 10:00:05 +0200"'


def _box_and_info() -> tuple[MemoryMailbox, MessageInfo]:
    box = fixture_mailbox()
    return box, box.infos[0]


async def test_index_only_items_never_read_the_file() -> None:
    box, info = _box_and_info()
    req = parse_fetch_items(parse_args(b"(FLAGS UID RFC822.SIZE INTERNALDATE MODSEQ)")[0])
    data = await render_fetch(req, 1, info, box, uid_command=False, recent=True, condstore=True)
    assert data == (b'* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1 RFC822.SIZE 474 '
                    b'INTERNALDATE "03-Jun-2024 08:00:05 +0000" MODSEQ (4))\r\n')
    assert box.reads == []


async def test_condstore_alone_adds_no_modseq() -> None:
    # Captured after ENABLE CONDSTORE: FETCH 1 (FLAGS) -> * 1 FETCH (FLAGS (\Seen \Recent))
    box, info = _box_and_info()
    req = parse_fetch_items(parse_args(b"(FLAGS)")[0])
    data = await render_fetch(req, 1, info, box, uid_command=False, recent=True, condstore=True)
    assert data == b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n"


async def test_thunderbird_opening_a_message() -> None:
    # UID fetch 21 (UID RFC822.SIZE BODY[]) on an unseen message: FLAGS is added.
    box = fixture_mailbox()
    info = dataclasses.replace(box.infos[1], flags=box.infos[1].flags | {SEEN})
    req = parse_fetch_items(parse_args(b"(UID RFC822.SIZE BODY[])")[0])
    assert req.sets_seen
    data = await render_fetch(req, 2, info, box, uid_command=True, recent=False,
                              condstore=False, flags_changed=True)
    head = b"* 2 FETCH (UID 2 RFC822.SIZE 1092 FLAGS (\\Seen) BODY[] {1092}\r\n"
    assert data.startswith(head)
    assert data.endswith(b"--outer-boundary--\r\n)\r\n")
    assert len(data) == len(head) + 1092 + 3


async def test_partial_past_the_end_is_an_empty_literal() -> None:
    box, info = _box_and_info()
    req = parse_fetch_items(parse_args(b"BODY.PEEK[]<10000.10>")[0])
    data = await render_fetch(req, 1, info, box, uid_command=False, recent=False, condstore=False)
    assert data == b"* 1 FETCH (BODY[]<10000> {0}\r\n)\r\n"


async def test_expunged_message_raises_for_the_session() -> None:
    from maa_server.storage.interface import NoSuchMessage

    box, info = _box_and_info()
    del box.contents[1]
    req = parse_fetch_items(parse_args(b"BODY.PEEK[]")[0])
    with pytest.raises(NoSuchMessage):
        await render_fetch(req, 1, info, box, uid_command=False, recent=False, condstore=False)


# -- property: any request on any bytes renders one well-framed response ----------

def _walk_literals(data: bytes) -> bytes:
    """The response with every literal's bytes removed; fails on bad framing."""
    out = bytearray()
    pos = 0
    while True:
        match = re.compile(rb"~?\{(\d+)\}\r\n").search(data, pos)
        if not match:
            return bytes(out + data[pos:])
        out += data[pos:match.start()]
        pos = match.end() + int(match.group(1))
        assert pos <= len(data)


ITEM_TEXTS = st.sampled_from([
    "FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE",
    "RFC822", "RFC822.HEADER", "RFC822.TEXT", "MODSEQ", "BODY[]", "BODY.PEEK[TEXT]<2.7>",
    "BODY[1]", "BODY[1.MIME]", "BODY[2.1]", "BODY[HEADER.FIELDS (From X)]", "BODY[2.HEADER]",
    "BODY[HEADER.FIELDS.NOT (Subject)]", "BINARY[]", "BINARY[1]", "BINARY.PEEK[2]<0.5>",
    "BINARY.SIZE[1]", "BINARY[TEXT]", "BODY[3.TEXT]",
])
RAW = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda head, body: head + b"\n\n" + body,
              st.sampled_from([
                  b"Content-Type: multipart/mixed; boundary=x",
                  b"Content-Type: text/plain\nContent-Transfer-Encoding: base64",
                  b"Content-Type: message/rfc822",
                  b"Content-Transfer-Encoding: quoted-printable\nSubject: =?x?q?y?=",
              ]),
              st.binary(max_size=300).map(lambda b: b.replace(b"X", b"\n--x\n"))),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(ITEM_TEXTS, min_size=1, max_size=5), RAW, st.booleans(), st.booleans())
async def test_any_request_on_any_message_is_well_framed(texts: list[str], raw: bytes,
                                                         uid: bool, changed: bool) -> None:
    from maa_server.protocols.imap.fetch import UnknownCte

    info = MessageInfo(uid=7, flags=frozenset({"\\Seen", "kw"}), internal_date=0.0,
                       size=len(raw), modseq=3)
    box = MemoryMailbox([info], {7: raw})
    req = parse_fetch_items([Atom(t) for t in texts])
    try:
        data = await render_fetch(req, 1, info, box, uid_command=uid, recent=False,
                                  condstore=False, flags_changed=changed)
    except UnknownCte:
        return  # a BINARY fetch of a part whose encoding cannot be undone: NO
    assert data.startswith(b"* 1 FETCH (")
    skeleton = _walk_literals(data)
    assert skeleton.endswith(b")\r\n") and skeleton.count(b"\r\n") == 1
