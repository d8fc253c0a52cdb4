"""SORT (RFC 5256/5957) against the real Dovecot: every captured SORT over the
two fixture mailboxes gives the same order; the base-subject rules."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from maa_server.protocols.imap.errors import ImapBadCharset, ImapParseError
from maa_server.protocols.imap.search.commands import sort_response
from maa_server.protocols.imap.search.sort import (
    SortCriterion,
    base_subject,
    parse_envelope,
    parse_sort_criteria,
)
from maa_server.protocols.imap.tokens import Atom, String
from tests.unit.imap_fetch.argtree import parse_args
from tests.unit.imap_fetch.dovecot_fixtures import Exchange, load
from tests.unit.imap_fetch.memory_mailbox import fixture_mailbox


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


def _cases() -> list[tuple[str, Exchange]]:
    out = []
    for scenario in ("sort", "sort_extra"):
        out += [(scenario, ex) for ex in load(scenario) if b"SORT" in ex.command[:9]]
    return out


@pytest.mark.parametrize("scenario, ex", _cases(),
                         ids=lambda v: v if isinstance(v, str) else v.command.decode()[:40])
async def test_same_order_as_dovecot(scenario: str, ex: Exchange) -> None:
    box = fixture_mailbox(extra=scenario == "sort_extra")
    uid = ex.command.startswith(b"UID ")
    args = parse_args(ex.command.split(b" ", 2 if uid else 1)[-1])
    view = [(i + 1, info) for i, info in enumerate(box.infos)]
    try:
        line = await sort_response(args, view, box, uid=uid)
    except ImapBadCharset:
        assert ex.tagged.startswith(b"NO [BADCHARSET]")
        return
    except ImapParseError as exc:
        assert ex.tagged == f"BAD Error in IMAP command SORT: {exc.text}.".encode()
        return
    assert line == ex.untagged.split(b"\r\n")[0] + b"\r\n"
    assert box.reads == []  # every key came from the index cache


@pytest.mark.parametrize("subject, base", [
    ("Re: [maa] RE: Fwd: Hello   world (fwd)", "Hello world"),
    ("[fwd: Re: lunch]", "lunch"),
    ("Re: Re[2]: [list] [tag]", "[tag]"),
    ("  (fwd) ", ""),
    ("Fw: re:hello", "hello"),
    ("Fwd:  [x]  ", "[x]"),
    ("Draft: plan", "Draft: plan"),
    ("re: [a] [b] c", "c"),
])
def test_base_subject_rfc5256(subject: str, base: str) -> None:
    assert base_subject(subject) == base


def test_criteria_parsing() -> None:
    assert parse_sort_criteria([Atom("REVERSE"), Atom("date"), Atom("SUBJECT")]) == (
        SortCriterion("DATE", True), SortCriterion("SUBJECT", False))
    with pytest.raises(ImapParseError, match="^Invalid sort argument$"):
        parse_sort_criteria([String(b"DATE")])


def test_envelope_reader_handles_literals_and_escapes() -> None:
    env = parse_envelope(b'("d" {5}\r\nS\xc3\xbcbj ((NIL NIL "a\\"b" "h")) NIL)')
    assert env == [b"d", b"S\xc3\xbcbj", [[None, None, b'a"b', b"h"]], None]
