"""IMAP SEARCH: key parsing (parser.py) into a SearchProgram (program.py),
evaluation over a mailbox view (evaluate.py), Dovecot-style matching (text.py),
SORT ordering of the matches (sort.py, RFC 5256/5957) and THREAD (thread.py).

    program = parse_search(args, charset)
    seqs = await evaluate_search(program, view, mailbox,
                                 recent_uids=..., last_seq=..., last_uid=..., saved_uids=...)
    # SORT and THREAD, whole untagged answers (commands.py):
    line = await sort_response(args, view, mailbox, uid=uid, recent_uids=..., saved_uids=...)
    line = await thread_response(args, view, mailbox, uid=uid, recent_uids=..., saved_uids=...)
"""

from maa_server.protocols.imap.search.commands import sort_response, thread_response
from maa_server.protocols.imap.search.evaluate import evaluate_search
from maa_server.protocols.imap.search.parser import (
    check_charset,
    parse_search,
    parse_search_date,
)
from maa_server.protocols.imap.search.program import SearchProgram
from maa_server.protocols.imap.search.sort import (
    SortCriterion,
    base_subject,
    parse_sort_criteria,
    sort_messages,
)
from maa_server.protocols.imap.search.thread import (
    THREAD_ALGORITHMS,
    parse_thread_algorithm,
    render_threads,
    thread_messages,
)

__all__ = [
    "SearchProgram", "SortCriterion", "base_subject", "check_charset", "evaluate_search",
    "parse_search", "parse_search_date", "parse_sort_criteria", "sort_messages",
    "THREAD_ALGORITHMS", "parse_thread_algorithm", "render_threads", "thread_messages",
    "sort_response", "thread_response",
]
