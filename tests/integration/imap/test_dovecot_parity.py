"""The same commands on the same Maildir to the real Dovecot 2.3 and to maa:
every answer byte for byte equal (after masking tags and the timing suffix).

Covers SORT/ESORT/THREAD, CONDSTORE/QRESYNC with two sessions (modseqs,
implicit enabling, HIGHESTMODSEQ in tagged replies, VANISHED, the order of
untagged replies), the parser's and the commands' error texts, and FETCH /
SEARCH / LIST basics. Skipped without root and /usr/sbin/dovecot.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.imap.dovecot_oracle import (
    Pair,
    message,
    require_dovecot,
    write_maildir,
)

# What Dovecot 2.3 advertises that we do not implement (yet): answered
# BAD "Unknown command" / refused as an unknown parameter instead.
NOT_IMPLEMENTED = {"URL-PARTIAL", "CATENATE", "CONTEXT=SEARCH", "NOTIFY", "SAVEDATE"}


def build(maildir: Path) -> None:
    write_maildir(maildir, [
        (message(1, "hello", sender="zed@example.org"), "S"),
        (message(2, "Re: hello", sender="amy@example.org",
                 extra="In-Reply-To: <m1@example.org>\n"), ""),
        (message(3, "other", sender="bob@example.org"), "F"),
        (message(4, "hello again", sender="cat@example.org"), "S"),
        (message(5, "Fwd: other", sender="amy@example.org",
                 extra="References: <m3@example.org>\n"), ""),
    ], ["$Forwarded", "Project_X"])


_HEAD = "From: a@example.org\nSubject: s\nDate: Mon, 03 Jun 2024 10:00:00 +0000\n"
_MIME = _HEAD + "MIME-Version: 1.0\n"
# Bodies for PREVIEW / SNIPPET: white space, quotes, length, MIME, HTML.
PREVIEW_MESSAGES = [
    _HEAD + "\na b  c\n\n\td e\n",
    _HEAD + "\n> quoted line\n> more\nreal text after\n",
    _HEAD + "\n> only quoted\n>   text here\n",
    _HEAD + "\n" + "word " * 80 + "\n",
    _MIME + "Content-Type: multipart/alternative; boundary=XX\n\n--XX\n"
    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    "Hall=C3=B6 Welt =\nsoft\n--XX\nContent-Type: text/html\n\n<p>html</p>\n--XX--\n",
    _MIME + "Content-Type: text/html; charset=utf-8\n\n<html><head><style>p {x}</style>"
    "<title>T</title></head><body><p>Hello&nbsp;<b>bold</b> &amp; more</p><br>next"
    "<script>var x;</script> line &lt;tag&gt; &#233;</body></html>\n",
    _MIME + "Content-Type: multipart/mixed; boundary=YY\n\n--YY\nContent-Type: application/pdf\n"
    "\nxxx\n--YY\nContent-Type: text/plain\n\nsecond part text\n--YY--\n",
    _MIME + "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n",
    _HEAD + "\n",
    _HEAD + "\n" + "\u00e9" * 250 + "\n",
    _HEAD + '\n  "quoted" \\ back\n',
]


def build_previews(maildir: Path) -> None:
    write_maildir(maildir, [(m.encode(), "") for m in PREVIEW_MESSAGES])


def _pair(tmp_path: Path, builder: Callable[[Path], None]) -> Iterator[Pair]:
    require_dovecot()
    # Dovecot ran in UTC for the captured answers; INTERNALDATE is local time.
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    running = Pair(tmp_path, builder)
    try:
        yield running
    finally:
        running.close()
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    yield from _pair(tmp_path, build)


def build_with_keywords(maildir: Path) -> None:
    """Two keywords in use and no dovecot-uidlist yet: Dovecot's first sync
    spends a modseq per keyword it registers (all messages MODSEQ 4)."""
    write_maildir(maildir, [(message(1, "a"), "Sa"), (message(2, "b"), "b"), (message(3, "c"), "")],
                  ["$Forwarded", "Project_X"])
    (maildir / "dovecot-uidlist").unlink()


@pytest.fixture
def keyword_pair(tmp_path: Path) -> Iterator[Pair]:
    yield from _pair(tmp_path, build_with_keywords)


@pytest.fixture
def preview_pair(tmp_path: Path) -> Iterator[Pair]:
    yield from _pair(tmp_path, build_previews)


def run(pair: Pair, script: list[str]) -> None:
    """Each line to both servers (`2> ` lines to a second session pair);
    collect every difference and fail with all of them."""
    second = None
    differences = []
    for line in script:
        clients = None
        if line.startswith("2> "):
            second = second or pair.client_pair()
            clients, line = second, line[3:]
        theirs, ours = pair.both(line.encode("utf-8", "surrogateescape"), clients)
        if line.startswith(("LIST", "XLIST")):
            # Dovecot lists in its directory-reading order: compare as sets.
            theirs, ours = (b"\r\n".join(sorted(x.split(b"\r\n"))) for x in (theirs, ours))
        if theirs != ours:
            differences.append(f"{line}\n  dovecot: {theirs!r}\n  maa:     {ours!r}")
    assert not differences, "\n".join(differences)


def test_capabilities_are_dovecots_minus_what_is_not_implemented(pair: Pair) -> None:
    theirs, ours = pair.both("CAPABILITY")
    dovecot = theirs.split(b"\r\n")[0].decode().split()[2:]
    maa = ours.split(b"\r\n")[0].decode().split()[2:]
    assert maa == [c for c in dovecot if c not in NOT_IMPLEMENTED]


def test_sort_esort_thread(pair: Pair) -> None:
    run(pair, [
        "SELECT INBOX",
        "SORT (SUBJECT) UTF-8 ALL",
        "SORT (REVERSE ARRIVAL) US-ASCII ALL",
        "SORT (FROM DATE) UTF-8 UNSEEN",
        "SORT (DISPLAYFROM) UTF-8 ALL",
        "UID SORT (REVERSE SIZE SUBJECT) UTF-8 1:*",
        "SORT (SUBJECT) ISO-8859-2 ALL",
        # RFC 5267 ESORT: ALL keeps the sort order, MIN/MAX are first/last.
        "SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL",
        "UID SORT RETURN (ALL) (REVERSE ARRIVAL) UTF-8 ALL",
        "SORT RETURN () (FROM) UTF-8 ALL",
        "SORT RETURN (SAVE MIN) (FROM) UTF-8 ALL",
        "SEARCH $",
        "SORT (FROM) UTF-8 $",
        "SORT RETURN (SAVE) (FROM) UTF-8 SUBJECT hello",
        "UID SEARCH $",
        "THREAD REFERENCES UTF-8 ALL",
        "UID THREAD REFS UTF-8 ALL",
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
        "THREAD REFERENCES UTF-8 SUBJECT hello",
        # Errors, in Dovecot's words.
        "THREAD FOO UTF-8 ALL",
        "THREAD REFERENCES",
        "THREAD REFS UTF-8",
        "SORT (FOO) UTF-8 ALL",
        "SORT () UTF-8 ALL",
        "SORT (SUBJECT) UTF-8",
        "SORT RETURN (FOO) (SUBJECT) UTF-8 ALL",
        "SORT RETURN (ALL) SUBJECT UTF-8 ALL",
        "SORT (SUBJECT) BOGUS-CHARSET ALL",
        # RFC 7162 3.1.5: a MODSEQ key enables CONDSTORE and adds MODSEQ.
        "SORT (SUBJECT) UTF-8 MODSEQ 1",
        "SORT RETURN (COUNT) (SUBJECT) UTF-8 MODSEQ 1",
    ])


def test_condstore_and_qresync_with_two_sessions(pair: Pair) -> None:
    run(pair, [
        "SELECT INBOX",
        # FETCH MODSEQ enables CONDSTORE: `* OK [HIGHESTMODSEQ 2]` first; a
        # fresh index gives every message the same modseq.
        "FETCH 1:* (MODSEQ)",
        "STORE 2 +FLAGS (\\Flagged)",
        "UID STORE 1:3 (UNCHANGEDSINCE 1) +FLAGS (\\Answered)",
        "STORE 1:5 (UNCHANGEDSINCE 3) FLAGS.SILENT (\\Seen)",
        "2> SELECT INBOX (CONDSTORE)",
        "2> STORE 4 +FLAGS (kw1)",
        "2> STORE 5 +FLAGS (\\Deleted)",
        "NOOP",
        "2> EXPUNGE",
        "FETCH 1 FLAGS",  # no EXPUNGE during FETCH (RFC 3501 7.4.1)
        "SEARCH ALL",
        "NOOP",
        "FETCH 1:* (FLAGS) (CHANGEDSINCE 3)",
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
        "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
        "ENABLE QRESYNC",
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
        "SEARCH MODSEQ 4",
        "SEARCH RETURN (COUNT MIN) MODSEQ 3",
        "2> STORE 1 +FLAGS (\\Flagged)",
        "NOOP",
        "2> STORE 2 +FLAGS (\\Deleted)",
        "NOOP",
        "2> EXPUNGE",
        "NOOP",
        "UNSELECT",
        "SELECT INBOX (QRESYNC (1700000000 2 1:10))",
        "SELECT INBOX (QRESYNC (1700000000 4 1:10 (1:3 1:4)))",
        "SELECT INBOX (CONDSTORE)",
        "EXAMINE INBOX (QRESYNC (1700000000 5))",
        "SELECT INBOX (FOO)",
        "ENABLE CONDSTORE CONDSTORE",
        "ENABLE FOO",
    ])


def test_error_texts(pair: Pair) -> None:
    run(pair, [
        "SELECT INBOX",
        "FETCH 1 FLAGS)",
        "FETCH 1 (FLAGS",
        "FETCH 1  FLAGS",
        "FETCH 1 (FLAGS)(UID)",
        'FETCH 1 "FLAGS',
        'FETCH 1 "a\\qb"',
        "FETCH 1 BODY[HEADER",
        "FETCH 1 (FOO)",
        "FETCH 1",
        "FETCH 1, FLAGS",
        "FETCH 0 FLAGS",
        "FETCH 99 FLAGS",
        "UID FETCH 99 FLAGS",
        "FETCH 1 BODY[1.x]",
        "FETCH 1 BODY[]<1.x>",
        "FETCH 1 BODY.PEEK",
        "FOO 1 2)",
        "UID FOO 1",
        "SEARCH SUBJECT h\u00e9llo",
        'SEARCH CHARSET UTF-8 SUBJECT "h\u00e9llo"',
        "SEARCH CHARSET BOGUS SUBJECT x",
        "SEARCH 1,",
        "SEARCH 1,,2",
        "SEARCH ,1",
        "SEARCH 1:99",
        "SEARCH UNDELETED BLAH",
        "SEARCH RETURN (FOO) ALL",
        "SEARCH RETURN ALL",
        "SEARCH BEFORE 1-Jan-20x",
        "SEARCH HEADER subject",
        "SEARCH ()",
        "SEARCH OR 1",
        "STORE 1 +FLAGS (\\Seen",
        "STORE 1 +FLAGS (\\Foo)",
        "STORE 1 +FLAGS (foo\u00e9)",
        "STORE 1 FOO (\\Seen)",
        "COPY 1",
        "COPY 1 nosuch",
        'LIST "" "*',
        "CHECK extra",
        "NOOP extra",
        "CREATE",
        "DELETE",
        "RENAME foo",
        "SUBSCRIBE",
        "STATUS INBOX",
        "STATUS INBOX ()",
        "STATUS INBOX (FOO)",
        "STATUS INBOX (MESSAGES DELETED)",
        'LSUB ""',
        'LIST ""',
        "LIST",
        "CREATE a/b/c",
        "DELETE a",
        "UNSELECT x",
        "EXPUNGE extra",
        "EXAMINE",
        "SELECT INBOX x",
        "CLOSE x",
        "COMPRESS DEFLATE",  # no imap_zlib: unknown
        "GETMETADATA",
        'GETMETADATA "INBOX" /private/comment',
        'SETMETADATA INBOX (/private/comment "x")',
        "CANCELUPDATE",
        'CANCELUPDATE "t1"',
        "UID",
        "UID FOO",
    ])


def test_fetch_search_list(pair: Pair) -> None:
    run(pair, [
        'LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES UNSEEN))',
        # Not HIGHESTMODSEQ: in Dovecot it switches modseq tracking on for
        # good, and SELECT/EXAMINE then always carry [HIGHESTMODSEQ]; we
        # send it only once the session has CONDSTORE enabled.
        "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE)",
        "CREATE a/b/c",
        'LIST "" "a*"',
        'LIST "" "a%"',
        'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"',
        "NAMESPACE",
        "ID NIL",
        "EXAMINE INBOX",
        "FETCH 1 (ENVELOPE BODYSTRUCTURE INTERNALDATE RFC822.SIZE FLAGS UID)",
        "FETCH 1 (BODY[HEADER.FIELDS (SUBJECT FROM)] BODY[TEXT]<0.10> BODY[1] "
        "BINARY.SIZE[1] RFC822.HEADER)",
        "SEARCH CHARSET UTF-8 OR FROM amy SUBJECT other",
        'SEARCH TEXT "message 3" NOT DELETED',
        "SEARCH SENTBEFORE 3-Jun-2024 SINCE 1-Jan-2000 LARGER 10 SMALLER 100000",
        "SEARCH HEADER Message-ID <m2@example.org>",
        "SEARCH UID 2:4 BODY body",
        "SEARCH RETURN (MIN MAX COUNT ALL) NOT SEEN",
        "STATUS INBOX (MESSAGES)",
        "CLOSE",
    ])


def test_which_commands_report_expunges(pair: Pair) -> None:
    """Untagged EXPUNGEs after UID FETCH/SEARCH/STORE/SORT but not after
    their sequence-number forms (RFC 3501 7.4.1), and nothing at all after
    commands that do not sync (LIST, STATUS, CREATE, NAMESPACE)."""
    script = ["SELECT INBOX", "2> SELECT INBOX"]
    for n, command in zip((5, 4, 3, 2, 1), ("UID FETCH 1 FLAGS", "UID SEARCH ALL",
                                           "UID STORE 1 +FLAGS (\\Seen)",
                                           "UID SORT (SUBJECT) UTF-8 ALL", "FETCH 1 FLAGS"),
                          strict=True):
        script += [f"2> STORE {n} +FLAGS (\\Deleted)", "NOOP", "2> EXPUNGE", command]
    script += ['LIST "" INBOX', "STATUS INBOX (MESSAGES)", "CREATE foo", "NAMESPACE", "NOOP"]
    run(pair, script)


def test_preview_and_snippet(preview_pair: Pair) -> None:
    run(preview_pair, [
        "EXAMINE INBOX",
        "FETCH 1:* (PREVIEW)",
        "FETCH 1:3 (SNIPPET (FUZZY))",
        "FETCH 2 (SNIPPET PREVIEW (LAZY))",
        "FETCH 1 (UID PREVIEW FLAGS)",
        "FETCH 1 PREVIEW",
        "FETCH 1 (SNIPPET (FOO))",
    ])


def test_mailbox_and_read_only_answers(pair: Pair) -> None:
    run(pair, [
        "CREATE Old",
        "RENAME Old INBOX",
        "RENAME inbox Foo",  # Dovecot refuses to move INBOX's mail away
        "RENAME nosuch Foo",
        "RENAME Old Sent",
        "RENAME Old Old",
        "SELECT INBOX",
        "STORE 1 +FLAGS (\\Recent)",
        "APPEND INBOX (\\Seen kwx) \"05-Jun-2024 10:00:00 +0200\" {21+}\r\nSubject: a\r\n\r\nhello\r\n",
        "COPY 1:2 Old",
        "UID COPY 4:* Old",
        "MOVE 1 Old",
        "UID MOVE 100 Old",
        "EXAMINE INBOX",
        "STORE 1 +FLAGS (\\Seen)",
        "UID STORE 1 +FLAGS (\\Seen)",
        "EXPUNGE",
        "UID EXPUNGE 1",
        "COPY 1 Sent",
        "STATUS Old (MESSAGES UIDNEXT UNSEEN RECENT)",
        "CLOSE",
        "CLOSE",
    ])


def test_list_lsub_xlist(pair: Pair) -> None:
    run(pair, [
        "CREATE a/b/c",
        "CREATE x",
        "SUBSCRIBE a/b/c",
        "SUBSCRIBE x",
        "DELETE x",
        'LSUB "" "*"',  # a subscription whose mailbox is gone: no attributes
        'LSUB "" "%"',  # RFC 3501 6.3.9: the parent of a subscribed one, \\Noselect
        'LIST (SUBSCRIBED) "" "*"',
        'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
        'LIST "" "%" RETURN (CHILDREN)',
        'LIST "" "a/%"',
        'LIST "a/" "%"',
        'LIST "" "*" RETURN (STATUS (MESSAGES))',
        'LIST (FOO) "" "a"',
        'LIST "" ("a" "x")',
        'LIST "" "A/B/C"',
        'LIST "" "Inbox*"',
        'XLIST "" "*"',
        "GETQUOTAROOT INBOX",
    ])


def test_qresync_move_expunge_and_saved_results(pair: Pair) -> None:
    run(pair, [
        "ENABLE QRESYNC",
        "SELECT INBOX",
        "CREATE Arc",
        "MOVE 1 Arc",  # VANISHED, not EXPUNGE, with QRESYNC
        "UID MOVE 3 Arc",
        "STORE 1 +FLAGS (\\Deleted)",
        "UID EXPUNGE 2",
        "EXPUNGE",
        "SEARCH RETURN (SAVE) ALL",
        "UID SEARCH RETURN (ALL) $",
        "SEARCH RETURN () UID 4:*",
        "UID SEARCH RETURN (MIN MAX) 1:*",
        "COPY $ Arc",  # one transaction: one modseq for both copies
        "FETCH $ (UID)",
        "SEARCH $ SEEN",
        "SEARCH OR $ 1 ALL",
        "UID SEARCH RETURN (COUNT) UID $",
        "APPEND INBOX {21+}\r\nSubject: b\r\n\r\nhello\r\n",
        "NOOP",
        "SELECT Arc",
        "EXPUNGE",
        "CLOSE",
    ])


def test_first_sync_modseqs_with_keywords(keyword_pair: Pair) -> None:
    run(keyword_pair, [
        "SELECT INBOX",
        "FETCH 1:* (MODSEQ FLAGS)",
        "STORE 3 +FLAGS (kw_new)",  # a new keyword by STORE: one modseq, like any STORE
        "STORE 2 +FLAGS ($Forwarded)",
        "FETCH 1:* (FLAGS) (CHANGEDSINCE 4)",
        "FETCH 3 (BODY[TEXT])",  # the implicit \\Seen: its MODSEQ follows
        "SEARCH MODSEQ 5",
    ])
