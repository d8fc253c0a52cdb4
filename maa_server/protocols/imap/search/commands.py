"""SORT and THREAD command bodies (RFC 5256), ready for the session's command table.

The session keeps what is session-level (the selected view, \\Recent, the
saved result, the tagged OK "Sort completed." / "Thread completed.") and
calls these for the untagged answer. Argument errors are Dovecot's
(cmd-sort.c, cmd-thread.c), captured in dovecot_sort.json / dovecot_thread.json.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.search.evaluate import evaluate_search
from maa_server.protocols.imap.search.parser import check_charset, parse_search
from maa_server.protocols.imap.search.program import SearchProgram
from maa_server.protocols.imap.search.sort import parse_sort_criteria, sort_messages
from maa_server.protocols.imap.search.thread import (
    ThreadNode,
    parse_thread_algorithm,
    render_threads,
    thread_messages,
)
from maa_server.protocols.imap.tokens import Arg, Atom, String
from maa_server.storage.interface import Mailbox, MessageInfo


def _charset(arg: Arg) -> str:
    if isinstance(arg, Atom):
        return check_charset(arg.value)
    if isinstance(arg, String):
        return check_charset(arg.text())
    raise ImapParseError("Invalid charset argument")


async def search_matches(args: Sequence[Arg], view: Sequence[tuple[int, MessageInfo]],
                         mailbox: Mailbox, recent_uids: Collection[int],
                         saved_uids: Collection[int] | None) -> tuple[list[int], SearchProgram]:
    """`charset keys...` after SORT's criteria or THREAD's algorithm
    (args[0] is that first argument): the matching sequence numbers and
    the parsed program (its MODSEQ use matters to the caller)."""
    program = parse_search(list(args[2:]), _charset(args[1]))
    last_seq = view[-1][0] if view else 0
    last_uid = view[-1][1].uid if view else 0
    seqs = await evaluate_search(program, view, mailbox, recent_uids=recent_uids,
                                 last_seq=last_seq, last_uid=last_uid, saved_uids=saved_uids)
    return seqs, program


async def sorted_matches(
    args: Sequence[Arg],
    view: Sequence[tuple[int, MessageInfo]],
    mailbox: Mailbox,
    *,
    recent_uids: Collection[int] = (),
    saved_uids: Collection[int] | None = None,
) -> tuple[list[int], SearchProgram]:
    """`(criteria) charset keys...` -> the matching sequence numbers in
    SORT order, and the search program."""
    if not args:
        raise ImapParseError("Invalid sort argument")
    criteria = parse_sort_criteria(args[0])
    if len(args) < 2:
        raise ImapParseError("Invalid charset argument")
    seqs, program = await search_matches(args, view, mailbox, recent_uids, saved_uids)
    return await sort_messages(criteria, seqs, view, mailbox), program


async def threaded_matches(
    args: Sequence[Arg],
    view: Sequence[tuple[int, MessageInfo]],
    mailbox: Mailbox,
    *,
    recent_uids: Collection[int] = (),
    saved_uids: Collection[int] | None = None,
) -> list[ThreadNode]:
    """`algorithm charset keys...` -> the thread roots."""
    if len(args) < 2:
        raise ImapParseError("Invalid arguments")
    algorithm = parse_thread_algorithm(args[0])
    seqs, _ = await search_matches(args, view, mailbox, recent_uids, saved_uids)
    return await thread_messages(algorithm, seqs, view, mailbox)


async def sort_response(
    args: Sequence[Arg],
    view: Sequence[tuple[int, MessageInfo]],
    mailbox: Mailbox,
    *,
    uid: bool,
    recent_uids: Collection[int] = (),
    saved_uids: Collection[int] | None = None,
) -> bytes:
    """`SORT (criteria) charset keys...` -> the `* SORT ...` line."""
    ordered, _ = await sorted_matches(args, view, mailbox, recent_uids=recent_uids,
                                      saved_uids=saved_uids)
    infos = dict(view)
    numbers = [infos[s].uid for s in ordered] if uid else ordered
    return b"* SORT" + b"".join(b" %d" % n for n in numbers) + b"\r\n"


async def thread_response(
    args: Sequence[Arg],
    view: Sequence[tuple[int, MessageInfo]],
    mailbox: Mailbox,
    *,
    uid: bool,
    recent_uids: Collection[int] = (),
    saved_uids: Collection[int] | None = None,
) -> bytes:
    """`THREAD algorithm charset keys...` -> the `* THREAD ...` line."""
    roots = await threaded_matches(args, view, mailbox, recent_uids=recent_uids,
                                   saved_uids=saved_uids)
    infos = dict(view)
    rendered = render_threads(roots, (lambda s: infos[s].uid) if uid else (lambda s: s))
    return b"* THREAD " + rendered.encode("ascii") + b"\r\n"
