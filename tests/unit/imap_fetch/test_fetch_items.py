"""parse_fetch_items / parse_fetch_modifiers: every item, the RFC 3501 examples,
the real Dovecot's BAD texts, and a property test that nothing else escapes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.fetch import (
    FetchRequest,
    SectionItem,
    SimpleItem,
    ordered_items,
    parse_fetch_items,
    parse_fetch_modifiers,
)
from maa_server.protocols.imap.tokens import Arg, Atom, String
from tests.unit.imap_fetch.argtree import Unparsable, parse_args
from tests.unit.imap_fetch.dovecot_fixtures import load


def items(text: str) -> FetchRequest:
    args = parse_args(text.encode())
    assert len(args) == 1
    return parse_fetch_items(args[0])


def names(req: FetchRequest) -> list[str]:
    return [i.name if isinstance(i, SimpleItem) else i.response_name for i in req.items]


# -- macros and simple items (RFC 3501 6.4.5) ---------------------------------

@pytest.mark.parametrize("macro, expanded", [
    ("ALL", ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]),
    ("fast", ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]),
    ("Full", ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]),
])
def test_macros_expand_as_rfc3501_says(macro: str, expanded: list[str]) -> None:
    assert names(items(macro)) == expanded


@pytest.mark.parametrize("name", [
    "UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ", "ENVELOPE", "BODY",
    "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT",
])
def test_every_simple_item_alone_and_in_a_list(name: str) -> None:
    assert names(items(name.lower())) == [name]
    assert names(items(f"({name} UID)")) == [name] if name == "UID" else [name, "UID"]


def test_macros_are_refused_inside_a_list_like_dovecot() -> None:
    with pytest.raises(ImapParseError, match="^Unknown parameter: ALL$"):
        items("(ALL)")


def test_duplicate_simple_items_are_sent_once() -> None:
    assert names(items("(FLAGS FLAGS UID UID)")) == ["FLAGS", "UID"]


def test_duplicate_sections_are_kept() -> None:
    assert names(items("(BODY[1] BODY[1])")) == ["BODY[1]", "BODY[1]"]


# -- sections -----------------------------------------------------------------

def test_rfc3501_example_section_with_header_fields() -> None:
    # RFC 3501 6.4.5: FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])
    req = items("(FLAGS BODY[HEADER.FIELDS (DATE FROM)])")
    section = req.items[1]
    assert isinstance(section, SectionItem)
    assert (section.kind, section.peek, section.part) == ("BODY", False, ())
    assert section.spec == "HEADER.FIELDS"
    assert section.fields == ("DATE", "FROM")
    assert section.response_name == "BODY[HEADER.FIELDS (DATE FROM)]"
    assert req.sets_seen and req.needs_content and not req.needs_structure


def test_thunderbird_header_fetch_is_upper_cased_in_the_answer() -> None:
    req = items("BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority "
                "X-Priority References Newsgroups In-Reply-To Content-Type Reply-To Received)]")
    section = req.items[0]
    assert isinstance(section, SectionItem)
    assert section.fields[0] == "From"
    assert section.response_name == (
        "BODY[HEADER.FIELDS (FROM TO CC BCC SUBJECT DATE MESSAGE-ID PRIORITY X-PRIORITY "
        "REFERENCES NEWSGROUPS IN-REPLY-TO CONTENT-TYPE REPLY-TO RECEIVED)]")
    assert not req.sets_seen


def test_quoted_field_names_keep_their_quotes_in_the_answer() -> None:
    section = items('BODY.PEEK[HEADER.FIELDS ("Subject" From)]').items[0]
    assert isinstance(section, SectionItem)
    assert section.fields == ("Subject", "From")
    assert section.response_name == 'BODY[HEADER.FIELDS ("SUBJECT" FROM)]'


@pytest.mark.parametrize("text, part, spec", [
    ("BODY[]", (), ""),
    ("BODY[TEXT]", (), "TEXT"),
    ("BODY[HEADER]", (), "HEADER"),
    ("BODY[1]", (1,), ""),
    ("BODY[1.2.3]", (1, 2, 3), ""),
    ("BODY[2.MIME]", (2,), "MIME"),
    ("BODY[4.2.HEADER]", (4, 2), "HEADER"),
    ("BODY[4.2.TEXT]", (4, 2), "TEXT"),
    ("body[1.header.fields.not (X-A)]", (1,), "HEADER.FIELDS.NOT"),
    ("BODY[0]", (0,), ""),  # Dovecot answers an empty literal
])
def test_section_specs(text: str, part: tuple[int, ...], spec: str) -> None:
    section = items(text).items[0]
    assert isinstance(section, SectionItem)
    assert (section.part, section.spec) == (part, spec)


def test_partial_shows_only_its_start() -> None:
    section = items("BODY.PEEK[]<0.2048>").items[0]
    assert isinstance(section, SectionItem)
    assert (section.partial_start, section.partial_length) == (0, 2048)
    assert section.response_name == "BODY[]<0>"


def test_partial_without_length_runs_to_the_end_like_dovecot() -> None:
    section = items("BODY.PEEK[]<5>").items[0]
    assert isinstance(section, SectionItem)
    assert (section.partial_start, section.partial_length) == (5, None)


def test_binary_items_rfc3516() -> None:
    req = items("(BINARY[1] BINARY.PEEK[2]<0.10> BINARY.SIZE[3])")
    kinds = [(i.kind, i.peek) for i in req.items if isinstance(i, SectionItem)]
    assert kinds == [("BINARY", False), ("BINARY", True), ("BINARY.SIZE", False)]
    assert names(req) == ["BINARY[1]", "BINARY[2]<0>", "BINARY.SIZE[3]"]
    assert req.sets_seen
    assert not items("BINARY.SIZE[1]").sets_seen
    assert items("BINARY.SIZE[1]<0.5>").items[0] == items("BINARY.SIZE[1]").items[0]


@pytest.mark.parametrize("text, seen", [
    ("RFC822", True), ("RFC822.TEXT", True), ("RFC822.HEADER", False), ("BODY[]", True),
    ("BODY.PEEK[]", False), ("BODY", False), ("BODYSTRUCTURE", False), ("FLAGS", False),
])
def test_which_items_set_seen(text: str, seen: bool) -> None:
    assert items(text).sets_seen is seen


def test_content_and_structure_needs() -> None:
    assert not items("(FLAGS UID RFC822.SIZE INTERNALDATE MODSEQ)").needs_content
    assert items("RFC822.HEADER").needs_content
    assert items("ENVELOPE").needs_structure and not items("ENVELOPE").needs_content
    assert items("BODYSTRUCTURE").needs_structure


# -- modifiers (RFC 7162) -------------------------------------------------------

def test_changedsince_implies_modseq() -> None:
    mods = parse_fetch_modifiers(parse_args(b"(CHANGEDSINCE 12345)")[0])
    req = parse_fetch_items(Atom("FLAGS"), mods)
    assert req.changedsince == 12345 and req.wants_modseq and not req.vanished


def test_vanished_needs_changedsince() -> None:
    with pytest.raises(ImapParseError, match="^Unknown FETCH modifier$"):
        parse_fetch_modifiers(parse_args(b"(VANISHED)")[0])  # not UID FETCH
    with pytest.raises(ImapParseError, match="^QRESYNC not enabled$"):
        parse_fetch_modifiers(parse_args(b"(VANISHED)")[0], uid=True)
    mods = parse_fetch_modifiers(parse_args(b"(VANISHED)")[0], qresync=True, uid=True)
    with pytest.raises(ImapParseError, match="^VANISHED used without CHANGEDSINCE$"):
        parse_fetch_items(Atom("FLAGS"), mods)
    mods = parse_fetch_modifiers(parse_args(b"(CHANGEDSINCE 1 VANISHED)")[0], qresync=True,
                                 uid=True)
    assert parse_fetch_items(Atom("FLAGS"), mods).vanished


@pytest.mark.parametrize("text, error", [
    ("(FOO)", "Unknown FETCH modifier"),
    ("(CHANGEDSINCE)", "Invalid CHANGEDSINCE modseq"),
    ("(CHANGEDSINCE x)", "Invalid CHANGEDSINCE modseq"),
    ("(CHANGEDSINCE 99999999999999999999)", "Invalid CHANGEDSINCE modseq"),
])
def test_bad_modifiers(text: str, error: str) -> None:
    with pytest.raises(ImapParseError, match=f"^{error}$"):
        parse_fetch_modifiers(parse_args(text.encode())[0])


def test_modseq_item_wants_modseq() -> None:
    assert items("MODSEQ").wants_modseq
    assert not items("FLAGS").wants_modseq


# -- answer order (captured from Dovecot) ----------------------------------------

def order(text: str, uid_command: bool = False, flags_changed: bool = False,
          mods: str | None = None) -> list[str]:
    arg = parse_args(text.encode())[0]
    modifiers = parse_fetch_modifiers(parse_args(mods.encode())[0]) if mods else None
    req = parse_fetch_items(arg, modifiers)
    return [i.name if isinstance(i, SimpleItem) else i.response_name
            for i in ordered_items(req, uid_command=uid_command, flags_changed=flags_changed)]


def test_buffered_items_come_first_in_request_order() -> None:
    assert order("(ENVELOPE UID BODY.PEEK[HEADER.FIELDS (Subject)] FLAGS)") == [
        "UID", "FLAGS", "ENVELOPE", "BODY[HEADER.FIELDS (SUBJECT)]"]
    assert order("(INTERNALDATE BODYSTRUCTURE UID ENVELOPE)") == [
        "INTERNALDATE", "UID", "BODYSTRUCTURE", "ENVELOPE"]
    assert order("(BODY.PEEK[TEXT] BODY.PEEK[1] RFC822.SIZE)") == [
        "RFC822.SIZE", "BODY[TEXT]", "BODY[1]"]


def test_uid_fetch_puts_uid_first() -> None:
    assert order("(FLAGS)", uid_command=True) == ["UID", "FLAGS"]
    assert order("(FLAGS UID)", uid_command=True) == ["UID", "FLAGS"]
    assert order("(RFC822.SIZE UID)", uid_command=True) == ["UID", "RFC822.SIZE"]


def test_seen_change_adds_flags_before_the_body() -> None:
    # Thunderbird: UID fetch 21 (UID RFC822.SIZE BODY[]) ->
    # * 21 FETCH (UID 21 RFC822.SIZE 302 FLAGS (\Flagged \Seen) BODY[] {302}
    assert order("(UID RFC822.SIZE BODY[])", uid_command=True, flags_changed=True) == [
        "UID", "RFC822.SIZE", "FLAGS", "BODY[]"]
    assert order("(FLAGS BODY[TEXT])", flags_changed=True) == ["FLAGS", "BODY[TEXT]"]


def test_changedsince_appends_modseq_after_the_buffered_items() -> None:
    assert order("(FLAGS)", mods="(CHANGEDSINCE 1)") == ["FLAGS", "MODSEQ"]
    assert order("(UID)", uid_command=True, mods="(CHANGEDSINCE 2)") == ["UID", "MODSEQ"]
    assert order("(UID MODSEQ FLAGS)") == ["UID", "MODSEQ", "FLAGS"]


# -- the real Dovecot's answers for every captured FETCH --------------------------

def _fetch_cases() -> list[tuple[bytes, bytes]]:
    cases = []
    for ex in load("fetch") + load("condstore"):
        words = ex.command.split(b" ")
        if words[0] == b"UID":
            words = words[1:]
        if words[0] == b"FETCH":
            cases.append((b" ".join(words[2:]), ex.tagged))
    return cases


@pytest.mark.parametrize("args, answer", _fetch_cases(), ids=lambda v: v.decode("latin-1")[:60])
def test_same_verdict_and_text_as_dovecot(args: bytes, answer: bytes) -> None:
    try:
        tree = parse_args(args)
    except Unparsable:
        assert answer.startswith(b"BAD")  # the line parser's business
        return
    if len(tree) == 2 and not isinstance(tree[1], list) or len(tree) > 2:
        assert answer == b"BAD Error in IMAP command FETCH: Invalid arguments."
        return  # the session checks the argument count
    if answer.startswith(b"OK"):
        mods = parse_fetch_modifiers(tree[1]) if len(tree) == 2 else None
        parse_fetch_items(tree[0], mods)
        return
    prefix = b"BAD Error in IMAP command FETCH: "
    assert answer.startswith(prefix)
    expected = answer[len(prefix):].rstrip(b".").decode()
    with pytest.raises(ImapParseError) as info:
        mods = parse_fetch_modifiers(tree[1]) if len(tree) == 2 else None
        parse_fetch_items(tree[0], mods)
    assert info.value.text.rstrip(".") == expected


# -- property: any argument tree gives a request or ImapParseError ----------------

ATOM_CHARS = st.sampled_from(list("BODYPEKHAFLGSIMXTUNRC0123456789.[]<>() \"-*\\"))
atoms = st.one_of(
    st.sampled_from(["BODY", "BODY.PEEK[", "BINARY[", "BINARY.SIZE[", "RFC822", "UID", "FLAGS",
                     "BODY[HEADER.FIELDS (", "ALL", "]", "<", ">", ".", "1", "0"]),
    st.text(ATOM_CHARS, max_size=30),
).map(lambda parts: parts)
atom_strategy = st.lists(atoms, min_size=1, max_size=6).map(lambda p: Atom("".join(p)))
leaf = st.one_of(atom_strategy, st.binary(max_size=10).map(String))
trees: st.SearchStrategy[Arg] = st.recursive(leaf, lambda children: st.lists(children, max_size=4),
                                             max_leaves=12)


@settings(max_examples=250, deadline=None)
@given(trees, st.one_of(st.none(), trees))
def test_any_tree_parses_or_raises_parse_error(tree: Arg, mods: Arg | None) -> None:
    try:
        modifiers = parse_fetch_modifiers(mods) if mods is not None else None
        req = parse_fetch_items(tree, modifiers)
    except ImapParseError:
        return
    assert isinstance(req, FetchRequest)
    assert req.items
    for item in req.items:
        if isinstance(item, SectionItem):
            item.response_name.encode("ascii")
