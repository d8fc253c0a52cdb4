"""The Sieve grammar (RFC 5228 section 8) and the validator's errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.sieve import SieveError, compile_script
from maa_server.sieve.syntax import StringList, parse, tokenize


def test_multiline_string_is_dot_unstuffed():
    # RFC 5228 2.4.2: a line starting with ".." loses one dot; "." ends it.
    cmds = parse('vacation text: # comment\r\nhello\r\n..dot\r\n.\r\n;')
    arg = cmds[0].args[0]
    assert isinstance(arg, StringList)
    assert arg.values == ["hello\r\n.dot\r\n"]


def test_quoted_string_escapes_and_numbers():
    tokens = tokenize('"a\\"b\\\\c" 10K 2M 1G')
    assert [t.value for t in tokens[:-1]] == ['a"b\\c', 10 * 1024, 2 << 20, 1 << 30]


def test_bracket_comment_counts_lines():
    with pytest.raises(SieveError) as info:
        compile_script("/* one\ntwo\nthree */\nfoo;")
    assert info.value.messages == [
        "line 4: error: unknown command 'foo' (only reported once at first occurrence)."]


def test_require_must_come_first():
    with pytest.raises(SieveError) as info:
        compile_script('keep;\nrequire "fileinto";\n')
    assert "require command can only be placed at top level" in info.value.messages[0]


def test_unknown_command_reported_once_per_name():
    with pytest.raises(SieveError) as info:
        compile_script('foo;\nfoo;\nbar;\n')
    assert [m.split(":")[0] + m.split(":")[1] for m in info.value.messages] == ["line 1 error", "line 3 error"]


def test_ereject_needs_configuration():
    with pytest.raises(SieveError):
        compile_script('require "ereject"; ereject "no";')
    from maa_server.sieve.signatures import EXTENSIONS, OPTIONAL_EXTENSIONS
    script = compile_script('require "ereject"; ereject "no";', extensions=EXTENSIONS | OPTIONAL_EXTENSIONS)
    assert "ereject" in script.extensions


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list('ifelsrquktp:;{}[](),"\\# \n*/0123456789Kabc.') + ["text:\n", "keep", "if", "require"]),
               max_size=60).map("".join))
def test_any_text_compiles_or_fails_cleanly(text):
    try:
        compile_script(text)
    except SieveError as exc:
        assert all(m.startswith("line ") for m in exc.messages)
