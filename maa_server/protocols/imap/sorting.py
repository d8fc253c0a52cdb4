"""SORT, UID SORT (RFC 5256, ESORT of RFC 5267), THREAD and UID THREAD commands.

The ordering and threading themselves live in search/ (sort.py, thread.py);
this module is the session side: the selected view, \\Recent, the saved
result `$` (RFC 5182), RETURN options answered as `* ESEARCH` and the
MODSEQ addition of RFC 7162 3.1.5, as Dovecot's cmd-sort.c / cmd-thread.c.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from maa_server.protocols.imap.query import (
    esearch_answer,
    implicit_condstore,
    parse_return_options,
)
from maa_server.protocols.imap.tokens import Arg

if TYPE_CHECKING:
    from maa_server.protocols.imap.session import ImapSession


async def cmd_sort(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    from maa_server.protocols.imap.search.commands import sorted_matches

    sel = s.selected
    assert sel is not None
    return_opts, rest = parse_return_options(args, "SORT")
    ordered, program = await sorted_matches(
        rest, sel.view(), sel.mailbox, recent_uids=set(sel.recent),
        saved_uids=sel.search_result if sel.has_saved_result else None)
    results = [sel.infos[q - 1].uid for q in ordered] if uid else ordered
    modseq = 0
    if program.uses_modseq:
        implicit_condstore(s)
        if ordered:
            modseq = max(sel.infos[q - 1].modseq for q in ordered)
    if return_opts is not None:
        s.write(esearch_answer(s, tag, uid, results, return_opts, modseq, sorted_order=True))
        return "Sort completed."
    line = b"* SORT" + b"".join(b" %d" % n for n in results)
    if modseq:
        line += b" (MODSEQ %d)" % modseq
    s.write(line + b"\r\n")
    return "Sort completed."


async def cmd_thread(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    from maa_server.protocols.imap.search.commands import thread_response

    sel = s.selected
    assert sel is not None
    s.write(await thread_response(
        args, sel.view(), sel.mailbox, uid=uid, recent_uids=set(sel.recent),
        saved_uids=sel.search_result if sel.has_saved_result else None))
    return "Thread completed."
