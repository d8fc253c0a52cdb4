"""The sans-IO IMAP command parser: RFC 3501 grammar, literals, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.protocols.imap.parser import (
    Command,
    CommandParser,
    CommandReader,
    CommandSyntaxError,
    NeedLiteral,
)
from maa_server.protocols.imap.tokens import Atom, String


def parse(line: bytes) -> Command:
    result = CommandParser().feed_line(line)
    assert isinstance(result, Command)
    return result


def test_simple_command_upper_cases_name_keeps_tag():
    cmd = parse(b"a001 login SMITH SESAME\r\n")
    assert cmd == Command("a001", "LOGIN", [Atom("SMITH"), Atom("SESAME")])


def test_quoted_strings_with_escapes():
    cmd = parse(b'A1 LOGIN "fred \\"the\\" foo" "back\\\\slash"\r\n')
    assert cmd.args == [String(b'fred "the" foo'), String(b"back\\slash")]


def test_nested_lists_and_nil():
    cmd = parse(b'a ID ("name" "x" "version" NIL)')
    assert cmd.args == [[String(b"name"), String(b"x"), String(b"version"), Atom("NIL")]]
    cmd = parse(b"t STATUS blurdybloop (UIDNEXT MESSAGES)")
    assert cmd.args == [Atom("blurdybloop"), [Atom("UIDNEXT"), Atom("MESSAGES")]]


def test_fetch_section_is_one_atom_rfc3501_example():
    cmd = parse(b"a003 fetch 12 (flags internaldate rfc822.size envelope body[header])")
    assert cmd.args[1][-1] == Atom("body[header]")
    cmd = parse(b"A654 FETCH 2:4 (FLAGS BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.2048>)")
    assert cmd.args == [Atom("2:4"), [Atom("FLAGS"),
                                      Atom("BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.2048>")]]


def test_uid_commands_keep_uid_as_name():
    cmd = parse(b"A999 UID FETCH 4827313:4828442 FLAGS")
    assert cmd.name == "UID" and cmd.args[0] == Atom("FETCH")


def test_synchronizing_literal_rfc3501_append_example():
    p = CommandParser(max_append=10_000)
    r = p.feed_line(b"A003 APPEND saved-messages (\\Seen) {310}\r\n")
    assert r == NeedLiteral(310, True, "A003", "APPEND")
    p.feed_literal(b"x" * 310)
    cmd = p.feed_line(b"\r\n")
    assert isinstance(cmd, Command)
    assert cmd.args == [Atom("saved-messages"), [Atom("\\Seen")], String(b"x" * 310, literal=True)]


def test_non_synchronizing_literal_and_continuation():
    p = CommandParser()
    r = p.feed_line(b"a LOGIN {5+}\r\n")
    assert isinstance(r, NeedLiteral) and not r.synchronizing
    p.feed_literal(b"alice")
    cmd = p.feed_line(b' "pw"\r\n')
    assert cmd == Command("a", "LOGIN", [String(b"alice", True), String(b"pw")])


def test_literal_inside_list():
    p = CommandParser()
    assert isinstance(p.feed_line(b"a SEARCH (SUBJECT {3}"), NeedLiteral)
    p.feed_literal(b"f\x00o")
    cmd = p.feed_line(b" FROM x)")
    assert cmd.args == [[Atom("SUBJECT"), String(b"f\x00o", True), Atom("FROM"), Atom("x")]]


@pytest.mark.parametrize("line", [
    b"",  # no tag
    b"tag",  # no command
    b"+tag NOOP",
    b'a LOGIN "unterminated',
    b"a LIST (a b",
    b"a LIST a b)",
    b"a  NOOP",
    b"a X {abc}",
    b"a FETCH 1 FLAGS\xc3\xa9",  # 8-bit in an atom (Dovecot: "8bit data in atom")
    b"a X {5} trailing",
])
def test_syntax_errors(line):
    with pytest.raises(CommandSyntaxError):
        CommandParser().feed_line(line)


def test_dovecot_leniency():
    """What Dovecot's imap-parser lets through, so must we (observed):
    any escaped byte in a quoted string, runs of spaces between arguments,
    no space after ')'."""
    p = CommandParser()
    cmd = p.feed_line(b'a LOGIN "bad\\escape" x')
    assert cmd.args[0].value == b"badescape"
    cmd = p.feed_line(b"a FETCH 1  FLAGS  ")
    assert [a.value for a in cmd.args] == ["1", "FLAGS"]
    cmd = p.feed_line(b"a FETCH 1 (FLAGS)(UID)")
    assert len(cmd.args) == 3


def test_errors_name_the_command():
    p = CommandParser()
    with pytest.raises(CommandSyntaxError) as info:
        p.feed_line(b"a FETCH 1 FLAGS)")
    assert (info.value.tag, info.value.name, info.value.text) == ("a", "FETCH", "Unexpected ')'")
    with pytest.raises(CommandSyntaxError) as info:
        p.feed_line(b"a UID fetch 1 (FLAGS")
    assert info.value.name == "UID FETCH"


def test_error_keeps_tag_and_parser_recovers():
    p = CommandParser()
    with pytest.raises(CommandSyntaxError) as err:
        p.feed_line(b'x1 LOGIN "open')
    assert err.value.tag == "x1"
    assert p.feed_line(b"x2 NOOP") == Command("x2", "NOOP", [])


def test_list_depth_limit():
    with pytest.raises(CommandSyntaxError):
        CommandParser().feed_line(b"a X " + b"(" * 50 + b")" * 50)


def test_literal_limits():
    p = CommandParser(max_literal=100, max_append=1000)
    with pytest.raises(CommandSyntaxError) as err:
        p.feed_line(b"a LOGIN {101}")
    assert err.value.kind == "BAD" and err.value.skip_literal == 0
    with pytest.raises(CommandSyntaxError) as err:
        p.feed_line(b"a LOGIN {101+}")
    assert err.value.skip_literal == 101  # already on its way: must be swallowed
    assert isinstance(p.feed_line(b"a APPEND INBOX {900}"), NeedLiteral)
    p.reset()
    with pytest.raises(CommandSyntaxError) as err:
        p.feed_line(b"b APPEND INBOX {1001}")
    assert err.value.kind == "NO" and err.value.code == "TOOBIG"


def test_literal_minus_limit():
    p = CommandParser(literal_minus=True)
    assert isinstance(p.feed_line(b"a LOGIN {4096+}"), NeedLiteral)
    p.reset()
    with pytest.raises(CommandSyntaxError) as err:
        p.feed_line(b"a LOGIN {4097+}")
    assert err.value.skip_literal == 4097
    assert isinstance(p.feed_line(b"a LOGIN {4097}"), NeedLiteral)


STREAM = (b"a1 CAPABILITY\r\n"
          b"a2 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n"
          b'a3 SELECT "INBOX"\r\n'
          b"a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)])\r\n")


def _events(chunks: list[bytes]) -> list[object]:
    reader = CommandReader()
    out: list[object] = []
    for chunk in chunks:
        reader.feed(chunk)
        while (ev := reader.next_event()) is not None:
            out.append(ev)
    return out


def test_byte_at_a_time_equals_whole_stream():
    whole = _events([STREAM])
    bytewise = _events([STREAM[i:i + 1] for i in range(len(STREAM))])
    assert whole == bytewise
    commands = [e for e in whole if isinstance(e, Command)]
    assert [c.tag for c in commands] == ["a1", "a2", "a3", "a4"]
    assert commands[1].args == [String(b"alice", True), String(b"secret", True)]
    needs = [e for e in whole if isinstance(e, NeedLiteral)]
    assert [n.synchronizing for n in needs] == [True, False]


def test_reader_line_limit_then_recovers():
    reader = CommandReader(max_line=50)
    reader.feed(b"a " + b"x" * 100 + b"\r\nb NOOP\r\n")
    assert isinstance(reader.next_event(), CommandSyntaxError)
    assert reader.next_event() == Command("b", "NOOP", [])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_command_or_bad(data):
    p = CommandParser(max_literal=50)
    for line in data.split(b"\n"):
        try:
            r = p.feed_line(line)
        except CommandSyntaxError:
            continue
        if isinstance(r, NeedLiteral):
            p.feed_literal(b"z" * r.size)


atoms = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_:",
                min_size=1, max_size=8).filter(lambda s: s.upper() != "NIL")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(atoms.map(Atom), st.binary(max_size=20).map(String)), max_size=6))
def test_serialised_args_round_trip(values):
    from maa_server.protocols.imap.responses import quoted_or_literal

    reader = CommandReader()
    wire = b"t CMD"
    for v in values:
        wire += b" " + (v.value.encode() if isinstance(v, Atom) else quoted_or_literal(v.value))
    reader.feed(wire + b"\r\n")
    events = []
    while (ev := reader.next_event()) is not None:
        events.append(ev)
    cmd = events[-1]
    assert isinstance(cmd, Command)
    got = [a if isinstance(a, Atom) else String(a.value) for a in cmd.args]
    assert got == [v if isinstance(v, Atom) else String(v.value) for v in values]
