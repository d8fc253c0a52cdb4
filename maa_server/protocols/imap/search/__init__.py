"""IMAP SEARCH: key parsing (parser.py) into a SearchProgram (program.py),
evaluation over a mailbox view (evaluate.py), Dovecot-style matching (text.py).

    program = parse_search(args, charset)
    seqs = await evaluate_search(program, view, mailbox,
                                 recent_uids=..., last_seq=..., last_uid=..., saved_uids=...)
"""

from maa_server.protocols.imap.search.evaluate import evaluate_search
from maa_server.protocols.imap.search.parser import check_charset, parse_search, parse_search_date
from maa_server.protocols.imap.search.program import SearchProgram

__all__ = ["SearchProgram", "check_charset", "evaluate_search", "parse_search", "parse_search_date"]
