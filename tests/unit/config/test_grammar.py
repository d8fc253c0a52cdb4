"""Grammar of Dovecot configuration lines: comments, quoting, continuation, shapes
(observations from doveconf 2.3.19, spec section 1.1-1.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maa_server.config import ConfigError, parse_config_text
from maa_server.config.lexer import LineKind, LineReader, classify, strip_comment


def one(text: str):
    reader = LineReader()
    line = reader.feed(text, 1)
    assert line is not None
    return line


def test_key_value_with_and_without_spaces() -> None:
    assert one("auth_verbose = yes").key == "auth_verbose"
    line = one("auth_verbose=yes")
    assert (line.kind, line.key, line.value) == (LineKind.KEY_VALUE, "auth_verbose", "yes")
    assert one("  default_fields =   ").value == ""


def test_comments_and_blank_lines_are_skipped() -> None:
    reader = LineReader()
    assert reader.feed("# a comment", 1) is None
    assert reader.feed("   ", 2) is None
    assert reader.feed("\t# indented comment", 3) is None


def test_hash_ends_value_and_ambiguous_hash_warns() -> None:
    assert one("ssl = yes # comment").value == "yes"
    line = one("login_greeting = Hello#World")
    assert line.value == "Hello"
    assert "Ambiguous '#' character" in line.warnings[0]


def test_hash_inside_quotes_is_kept() -> None:
    assert one("login_greeting = 'single # quoted'").value == "single # quoted"
    assert one('key = "# char and trailing whitespace  "').value == "# char and trailing whitespace  "


def test_quotes_and_escapes() -> None:
    assert one(r'login_greeting = "Hello \"World\""').value == 'Hello "World"'
    # str_unescape(): the backslash only protects the next character (observed: "a\tb" -> atb)
    assert one(r'login_greeting = "a\tb"').value == "atb"
    # a value with only an opening quote is taken literally
    assert one('login_greeting = "abc').value == '"abc'


def test_line_continuation_joins_with_one_space() -> None:
    reader = LineReader()
    assert reader.feed("imap_logout_format = in=%i \\", 1) is None
    assert reader.feed("# comment lines inside a continuation are skipped", 2) is None
    line = reader.feed("    out=%o", 3)
    assert line is not None
    assert (line.value, line.lineno) == ("in=%i out=%o", 3)


def test_file_and_variable_shapes() -> None:
    line = one("ssl_cert = <  /etc/dovecot/private/dovecot.pem")
    assert (line.kind, line.value) == (LineKind.KEY_FILE, "/etc/dovecot/private/dovecot.pem")
    line = one("mail_plugins = $mail_plugins sieve")
    assert (line.kind, line.value) == (LineKind.KEY_VARIABLE, "$mail_plugins sieve")
    # quoted values are never expanded
    assert one("login_greeting = '$x'").kind is LineKind.KEY_VALUE


def test_section_shapes() -> None:
    line = one("passdb {")
    assert (line.kind, line.key, line.value) == (LineKind.SECTION_BEGIN, "passdb", "")
    line = one('mailbox "Sent Messages" {')
    assert (line.kind, line.key, line.value) == (LineKind.SECTION_BEGIN, "mailbox", "Sent Messages")
    assert one("}").kind is LineKind.SECTION_END
    assert classify("!include conf.d/*.conf", 1).kind is LineKind.INCLUDE
    assert classify("!include_try local.conf", 1).value == "local.conf"


@pytest.mark.parametrize(("text", "message"), [
    ("passdb { driver = pam }", "Garbage after '{'"),
    ("passdb", "Expecting '{'"),
    ("local_name a.org b.org {", "Expecting '{'"),
    ('passdb "abc {', "Missing closing quote"),
])
def test_section_line_errors(text: str, message: str) -> None:
    line = one(text)
    assert (line.kind, line.value) == (LineKind.ERROR, message)


def test_strip_comment_skips_escaped_quotes() -> None:
    assert strip_comment(r'a = "x \" # y" # z') == (r'a = "x \" # y" ', False)


def test_error_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    conf = tmp_path / "dovecot.conf"
    with pytest.raises(ConfigError) as err:
        parse_config_text("# one\n\nssl = yes\npassdb { driver = pam }\n", conf)
    assert str(err.value) == f"Error in configuration file {conf} line 4: Garbage after '{{'"
