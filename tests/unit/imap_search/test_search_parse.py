"""parse_search: every RFC 3501 key, MODSEQ, OLDER/YOUNGER, CHARSET, the real
Dovecot's error texts, and a property test that nothing else escapes."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.protocols.imap.errors import ImapBadCharset, ImapParseError
from maa_server.protocols.imap.search import SearchProgram, parse_search, parse_search_date
from maa_server.protocols.imap.search.program import (
    Age,
    All,
    And,
    Body,
    DateKey,
    HasFlag,
    Header,
    InSequence,
    InUids,
    ModSeq,
    Not,
    Or,
    Recent,
    Size,
    Text,
)
from maa_server.protocols.imap.tokens import Arg, Atom, String
from tests.unit.imap_fetch.argtree import Unparsable, parse_args
from tests.unit.imap_fetch.dovecot_fixtures import load


def parse(text: bytes | str, charset: str | None = None) -> SearchProgram:
    data = text.encode() if isinstance(text, str) else text
    return parse_search(parse_args(data), charset)


@pytest.mark.parametrize("key, node", [
    ("ALL", All()),
    ("ANSWERED", HasFlag("\\Answered")), ("UNANSWERED", Not(HasFlag("\\Answered"))),
    ("DELETED", HasFlag("\\Deleted")), ("UNDELETED", Not(HasFlag("\\Deleted"))),
    ("DRAFT", HasFlag("\\Draft")), ("UNDRAFT", Not(HasFlag("\\Draft"))),
    ("FLAGGED", HasFlag("\\Flagged")), ("UNFLAGGED", Not(HasFlag("\\Flagged"))),
    ("SEEN", HasFlag("\\Seen")), ("UNSEEN", Not(HasFlag("\\Seen"))),
    ("RECENT", Recent()), ("OLD", Not(Recent())),
    ("NEW", And((Recent(), Not(HasFlag("\\Seen"))))),
    ("KEYWORD $Forwarded", HasFlag("$Forwarded", keyword=True)),
    ("UNKEYWORD Junk", Not(HasFlag("Junk", keyword=True))),
    ("LARGER 1000", Size(True, 1000)), ("SMALLER 10", Size(False, 10)),
    ("BEFORE 1-Feb-1994", DateKey(False, "before", datetime.date(1994, 2, 1))),
    ("ON 1-Feb-1994", DateKey(False, "on", datetime.date(1994, 2, 1))),
    ("SINCE 1-Feb-1994", DateKey(False, "since", datetime.date(1994, 2, 1))),
    ("SENTBEFORE 1-Feb-1994", DateKey(True, "before", datetime.date(1994, 2, 1))),
    ("SENTON 01-feb-1994", DateKey(True, "on", datetime.date(1994, 2, 1))),
    ('SENTSINCE "1-Feb-1994"', DateKey(True, "since", datetime.date(1994, 2, 1))),
    ("OLDER 3600", Age(True, 3600)), ("YOUNGER 60", Age(False, 60)),
    ("FROM Smith", Header("from", "SMITH", address=True)),
    ("TO smith", Header("to", "SMITH", address=True)),
    ("CC smith", Header("cc", "SMITH", address=True)),
    ("BCC smith", Header("bcc", "SMITH", address=True)),
    ('SUBJECT "Hello World"', Header("subject", "HELLO WORLD")),
    ('HEADER X-Mailer ""', Header("x-mailer", "")),
    ("HEADER Reply-To bob", Header("reply-to", "BOB", address=True)),
    ("BODY Lunch", Body("LUNCH")), ("TEXT Lunch", Text("LUNCH")),
    ("MODSEQ 620162338", ModSeq(620162338)),
    ('MODSEQ "/flags/\\\\draft" all 620162338', ModSeq(620162338)),
    ("NOT SEEN", Not(HasFlag("\\Seen"))),
    ("OR SEEN DRAFT", Or(HasFlag("\\Seen"), HasFlag("\\Draft"))),
    ("(SEEN DRAFT)", And((HasFlag("\\Seen"), HasFlag("\\Draft")))),
])
def test_every_key(key: str, node: object) -> None:
    assert parse(key).root == node


def test_sequence_sets_and_uids() -> None:
    root = parse("2:4,7 UID 10:*").root
    assert isinstance(root, And)
    seq, uids = root.keys
    assert isinstance(seq, InSequence) and str(seq.numbers) == "2:4,7"
    assert isinstance(uids, InUids) and str(uids.uids) == "10:*"


def test_saved_result_is_a_uid_set() -> None:
    program = parse("$")
    assert isinstance(program.root, InUids) and program.root.uids.saved
    assert program.uses_saved


def test_rfc3501_example() -> None:
    # RFC 3501 6.4.4: SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
    program = parse('FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert program.root == And((HasFlag("\\Flagged"),
                                DateKey(False, "since", datetime.date(1994, 2, 1)),
                                Not(Header("from", "SMITH", address=True))))
    assert program.needs_content and not program.uses_modseq


def test_rfc3501_charset_example_with_literal() -> None:
    # RFC 3501 6.4.4: SEARCH CHARSET UTF-8 TEXT {6} ... (here "XXXXXX")
    program = parse(b"CHARSET UTF-8 TEXT {6+}\r\nXXXXXX")
    assert program.root == Text("XXXXXX") and program.charset == "UTF-8"


def test_charset_given_by_the_session() -> None:
    program = parse_search([Atom("FROM"), String("M\xfcller".encode("latin-1"), literal=True)],
                           "ISO-8859-1")
    assert program.root == Header("from", "MU\u0308LLER", address=True)


def test_unknown_charsets_get_badcharset() -> None:
    with pytest.raises(ImapBadCharset) as info:
        parse("CHARSET X-NOSUCH FROM x")
    assert info.value.code.startswith("BADCHARSET")
    with pytest.raises(ImapBadCharset):
        parse("CHARSET base64 FROM x")  # a codec, but not a text charset
    assert parse("CHARSET windows-1252 ALL").charset == "windows-1252"


def test_modseq_program_asks_for_the_modseq_answer() -> None:
    assert parse("FLAGGED MODSEQ 1").uses_modseq
    assert not parse("FLAGGED").needs_content


@pytest.mark.parametrize("text, day", [
    ("1-Feb-1994", datetime.date(1994, 2, 1)),
    ("31-Feb-2024", None),  # accepted by Dovecot, then matches nothing
    ("0-Jun-2024", None),
    ("29-Feb-2024", datetime.date(2024, 2, 29)),
    ("05-jun-2024", datetime.date(2024, 6, 5)),
])
def test_dates(text: str, day: datetime.date | None) -> None:
    assert parse_search_date(text) == day


@pytest.mark.parametrize("text", ["5-June-2024", "2024-06-05", "5-Jun-24", "x", "123-Jun-2024"])
def test_bad_dates(text: str) -> None:
    with pytest.raises(ImapParseError, match="^Invalid search date parameter$"):
        parse_search_date(text)


# -- the real Dovecot's verdicts for every captured SEARCH ------------------------

def _search_cases() -> list[tuple[bytes, bytes]]:
    cases = []
    for ex in load("search") + load("condstore"):
        words = ex.command.split(b" ", 1)
        if words[0] == b"UID":
            words = words[1].split(b" ", 1)
        if words[0] == b"SEARCH":
            rest = words[1] if len(words) > 1 else b""
            if not rest.upper().startswith(b"RETURN"):  # ESEARCH options are the session's
                cases.append((rest, ex.tagged))
    return cases


@pytest.mark.parametrize("args, answer", _search_cases(), ids=lambda v: v.decode("latin-1")[:50])
def test_same_verdict_and_text_as_dovecot(args: bytes, answer: bytes) -> None:
    try:
        tree = parse_args(args)
    except Unparsable:
        assert answer.startswith(b"BAD")  # the line parser's business
        return
    if answer.startswith(b"OK"):
        parse_search(tree, None)
        return
    if answer.startswith(b"NO [BADCHARSET]"):
        with pytest.raises(ImapBadCharset):
            parse_search(tree, None)
        return
    prefix = b"BAD Error in IMAP command SEARCH: "
    assert answer.startswith(prefix)
    with pytest.raises(ImapParseError) as info:
        parse_search(tree, None)
    assert info.value.text == answer[len(prefix):].rstrip(b".").decode()


# -- property: any argument tree gives a program or ImapParseError/ImapBadCharset ----

words = st.sampled_from([
    "ALL", "SEEN", "NOT", "OR", "UID", "1:3", "*", "$", "0", "HEADER", "FROM", "LARGER", "10",
    "x", "BEFORE", "1-Jan-2020", "KEYWORD", "MODSEQ", "OLDER", "CHARSET", "UTF-8", "BODY",
    "SENTON", "31-Feb-2024", "NEW", "(", "99999999999999999999",
])
leaf = st.one_of(words.map(Atom), st.text(max_size=8).map(lambda t: Atom(t) if t else Atom("A")),
                 st.binary(max_size=8).map(String))
trees = st.lists(st.recursive(leaf, lambda c: st.lists(c, max_size=4), max_leaves=10), max_size=6)


@settings(max_examples=250, deadline=None)
@given(trees, st.one_of(st.none(), st.sampled_from(["UTF-8", "us-ascii", "latin1", "nope"])))
def test_any_tree_parses_or_raises_imap_errors(tree: list[Arg], charset: str | None) -> None:
    try:
        program = parse_search(tree, charset)
    except (ImapParseError, ImapBadCharset):
        return
    assert isinstance(program, SearchProgram)
    assert program.nodes[0] is program.root


def test_fold_is_dovecots_decomposed_titlecase() -> None:
    from maa_server.protocols.imap.search.text import fold

    assert fold("cafe") in fold("Café au lait")  # accents decompose (captured)
    assert fold("jurgen") not in fold("Jürgen")  # ...but are not dropped (captured)
    assert fold("GRÜßE") == fold("grüße")
    # Checked against Dovecot on "Große Straße ﬁne": ß and ligatures are not
    # expanded, and capital ẞ is not ß.
    assert fold("strasse") not in fold("Große Straße ﬁne")
    assert fold("fine") not in fold("Große Straße ﬁne")
    assert fold("straße") in fold("Große Straße ﬁne")
    assert fold("STRAẞE") not in fold("Große Straße ﬁne")
    assert fold("ǆ") == fold("Ǆ") == fold("ǅ")
