"""THREAD (RFC 5256 section 3) against the real Dovecot: ORDEREDSUBJECT,
REFERENCES and Dovecot's REFS over the fixture mailboxes, including subsets."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.search.commands import thread_response
from maa_server.protocols.imap.search.thread import ThreadNode, render_threads
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
    for scenario in ("thread", "sort", "sort_extra"):
        for ex in load(scenario):
            verb = ex.command.removeprefix(b"UID ").split(b" ")[0]
            if verb == b"THREAD":
                out.append((scenario, ex))
    return out


@pytest.mark.parametrize("scenario, ex", _cases(),
                         ids=lambda v: v if isinstance(v, str) else v.command.decode()[:40])
async def test_same_threads_as_dovecot(scenario: str, ex: Exchange) -> None:
    box = fixture_mailbox(extra={"thread": "thread", "sort_extra": True}.get(scenario, False))
    uid = ex.command.startswith(b"UID ")
    args = parse_args(ex.command.split(b" ", 2 if uid else 1)[-1])
    view = [(i + 1, info) for i, info in enumerate(box.infos)]
    try:
        line = await thread_response(args, view, box, uid=uid)
    except ImapParseError as exc:
        assert ex.tagged == f"BAD Error in IMAP command THREAD: {exc.text}.".encode()
        return
    assert line == ex.untagged.split(b"\r\n")[0] + b"\r\n"
    assert box.reads == []  # threading uses the cached headers only


def test_render_chains_flat_and_siblings_nested() -> None:
    from maa_server.protocols.imap.search.thread import _link, _Message

    def node(seq: int) -> ThreadNode:
        return ThreadNode(_Message(seq, float(seq), "S", False, None, []))

    a, b, c, d, e = (node(n) for n in (1, 2, 3, 4, 5))
    _link(a, b)
    _link(b, c)
    _link(c, d)
    _link(c, e)
    dummy = ThreadNode()
    _link(dummy, node(6))
    _link(dummy, node(7))
    # RFC 5256 section 4 example shapes
    assert render_threads([a, dummy]) == "(1 2 3 (4)(5))((6)(7))"
    assert render_threads([]) == ""
