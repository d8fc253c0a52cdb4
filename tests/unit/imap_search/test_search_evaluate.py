"""evaluate_search against the real Dovecot: every captured SEARCH over the same
six messages must find the same messages; index-only keys never read files."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.protocols.imap.search import evaluate_search, parse_search
from maa_server.protocols.imap.tokens import Atom, String
from maa_server.storage.interface import MessageInfo
from tests.unit.imap_fetch.argtree import parse_args
from tests.unit.imap_fetch.dovecot_fixtures import load
from tests.unit.imap_fetch.memory_mailbox import MemoryMailbox, fixture_mailbox

ALL_RECENT = {1, 2, 3, 4, 5, 6}  # Dovecot's first SELECT saw six \Recent messages


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def _cases() -> list[tuple[str, bytes, bool, list[int]]]:
    """(scenario, search args, uid command, Dovecot's numbers) for every
    successful SEARCH without RETURN on an unchanged mailbox."""
    out = []
    for scenario, ex in [("search", e) for e in load("search")] + \
            [("extra", e) for e in load("extra")]:
        words = ex.command.split(b" ", 1)
        uid = words[0] == b"UID"
        if uid:
            words = words[1].split(b" ", 1)
        if words[0] != b"SEARCH" or not ex.tagged.startswith(b"OK") or len(words) < 2:
            continue
        if words[1].upper().startswith(b"RETURN") or words[1] == b"1,":
            continue
        line = next(ln for ln in ex.untagged.split(b"\r\n") if ln.startswith(b"* SEARCH"))
        numbers = [int(n) for n in line[len(b"* SEARCH"):].split(b" (")[0].split()]
        out.append((scenario, words[1], uid, numbers))
    return out


async def run(box: MemoryMailbox, args: bytes, uid: bool = False) -> list[int]:
    program = parse_search(parse_args(args), None)
    view = [(i + 1, info) for i, info in enumerate(box.infos)]
    seqs = await evaluate_search(program, view, box, recent_uids=ALL_RECENT,
                                 last_seq=len(view), last_uid=view[-1][1].uid)
    return [box.infos[s - 1].uid for s in seqs] if uid else seqs


@pytest.mark.parametrize("scenario, args, uid, expected", _cases(), ids=lambda v: repr(v)[:50])
async def test_same_matches_as_dovecot(scenario: str, args: bytes, uid: bool,
                                       expected: list[int]) -> None:
    assert await run(fixture_mailbox(extra=scenario == "extra"), args, uid) == expected


async def test_flag_and_size_keys_never_read_a_file() -> None:
    box = fixture_mailbox()
    assert await run(box, b"OR (SEEN LARGER 400) (UID 5:* SINCE 7-Jun-2024 NOT DRAFT)") == [1, 4, 5]
    assert box.reads == []


async def test_content_is_read_only_for_messages_still_in_question() -> None:
    box = fixture_mailbox()
    assert await run(box, b"SEEN BODY lunch") == [1, 4]
    assert box.reads == [1, 4, 6]  # unseen messages were decided from flags


async def test_cached_headers_answer_without_reading_files() -> None:
    box = fixture_mailbox()
    assert await run(box, b"SEEN SUBJECT lunch") == [1, 4]
    assert await run(box, b"SENTON 4-Jun-2024") == [2]
    assert await run(box, b"HEADER Message-ID lunch-1") == [1]
    # Address keys use the cached ENVELOPE, written the way Dovecot writes them.
    assert await run(box, b'OR FROM "Alice Example" CC "Dave, Jr."') == [1, 6]
    assert box.reads == []
    assert box.structures == [1, 4, 6] + [1, 2, 3, 4, 5, 6] * 3


async def test_saved_result_and_expunged_files() -> None:
    box = fixture_mailbox()
    program = parse_search(parse_args(b"$ SUBJECT lunch"), None)
    view = [(i + 1, info) for i, info in enumerate(box.infos)]
    del box.contents[4]  # expunged by another session meanwhile: simply no match
    seqs = await evaluate_search(program, view, box, recent_uids=set(), last_seq=6, last_uid=6,
                                 saved_uids={1, 4, 5})
    assert seqs == [1]
    none = await evaluate_search(program, view, box, recent_uids=set(), last_seq=6, last_uid=6)
    assert none == []


async def test_modseq_and_age_keys() -> None:
    box = fixture_mailbox(modseq=7)
    assert await run(box, b"MODSEQ 7") == [1, 2, 3, 4, 5, 6]
    assert await run(box, b"MODSEQ 8") == []
    program = parse_search(parse_args(b"YOUNGER 100"), None)
    view = [(i + 1, info) for i, info in enumerate(box.infos)]
    now = box.infos[5].internal_date + 50
    assert await evaluate_search(program, view, box, recent_uids=set(), last_seq=6, last_uid=6,
                                 now=now) == [6]


# -- property: any message bytes and any header key give an answer ----------------

header_names = st.sampled_from(["from", "to", "subject", "date", "x-any", "cc"])
raw_messages = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda name, value, body: name + b": " + value + b"\r\n\r\n" + body,
              st.sampled_from([b"From", b"To", b"Subject", b"Date", b"Cc"]),
              st.binary(max_size=80), st.binary(max_size=40)),
)


@settings(max_examples=300, deadline=None)
@given(raw_messages, header_names, st.text(max_size=6), st.booleans())
async def test_header_keys_never_fail_on_any_message(raw: bytes, name: str, needle: str,
                                                     sent: bool) -> None:
    box = MemoryMailbox([MessageInfo(uid=1, flags=frozenset(), internal_date=0.0,
                                     size=len(raw), modseq=1)], {1: raw})
    keys = [Atom("HEADER"), String(name.encode()), String(needle.encode())]
    if sent:
        keys = [Atom("OR"), keys, [Atom("SENTON"), Atom("1-Jan-2024")]]  # type: ignore[list-item]
    program = parse_search(keys, None)
    result = await evaluate_search(program, [(1, box.infos[0])], box, recent_uids=set(),
                                   last_seq=1, last_uid=1)
    assert result in ([], [1])


async def test_modseq_searches_after_changes_match_dovecot() -> None:
    """Replay the CONDSTORE session: STORE and an implicit \\Seen raise the
    mod-sequences; every SEARCH MODSEQ then finds what Dovecot found."""
    box = fixture_mailbox(modseq=4)
    checked = 0
    for ex in load("condstore"):
        words = ex.command.split(b" ")
        uid = words[0] == b"UID"
        if uid:
            words = words[1:]
        if words[0] == b"STORE" or (words[0] == b"FETCH" and b"BODY[" in ex.command):
            seq = int(words[1])
            flag = "\\Flagged" if words[0] == b"STORE" else "\\Seen"
            info = box.infos[seq - 1]
            box.infos[seq - 1] = dataclasses.replace(info, flags=info.flags | {flag},
                                                     modseq=box.highest_modseq + 1)
        if words[0] != b"SEARCH" or not ex.tagged.startswith(b"OK"):
            continue
        line = next(ln for ln in ex.untagged.split(b"\r\n") if ln.startswith(b"* SEARCH"))
        numbers, _, modseq = line[len(b"* SEARCH"):].partition(b" (MODSEQ ")
        found = await run(box, b" ".join(words[1:]), uid)
        assert found == [int(n) for n in numbers.split()], ex.command
        if found:  # what the session will put in "(MODSEQ n)"
            assert max(box.infos[s - 1].modseq for s in found) == int(modseq.rstrip(b")"))
        checked += 1
    assert checked == 6
