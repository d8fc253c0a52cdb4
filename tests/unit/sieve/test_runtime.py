"""Run-time rules: implicit keep, limits, include, duplicate, variables."""

from __future__ import annotations

import pytest

from maa_server.sieve import compile_script, run
from maa_server.sieve.interpreter import RunLimits
from maa_server.sieve.message import Envelope, SieveMessage

MESSAGE = SieveMessage(b"From: a@example.org\r\nSubject: hello world\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n",
                       Envelope("a@example.org", "me@example.com"))


def test_too_many_redirects_is_a_runtime_error_that_keeps():
    script = compile_script("".join(f'redirect "u{i}@example.net";\n' for i in range(5)))
    result = run(script, MESSAGE, limits=RunLimits(max_redirects=4))
    assert result.error and result.implicit_keep and result.actions == []


def test_include_runs_personal_script_and_return_ends_it():
    child = compile_script('require ["fileinto", "include"]; fileinto "Child"; return; fileinto "Never";')
    parent = compile_script('require "include"; include :personal "child"; keep;')
    result = run(parent, MESSAGE, include=lambda name, loc: child if name == "child" else None)
    assert [a.mailbox for a in result.actions] == ["Child", "INBOX"]


def test_missing_include_fails_unless_optional():
    assert run(compile_script('require "include"; include "gone";'), MESSAGE).error
    ok = run(compile_script('require "include"; include :optional "gone"; discard;'), MESSAGE)
    assert not ok.error and not ok.implicit_keep


def test_duplicate_uses_message_id_and_the_tracker():
    seen: set[str] = set()

    def tracker(key: str, seconds: int) -> bool:
        dup = key in seen
        seen.add(key)
        return dup

    script = compile_script('require "duplicate"; if duplicate { discard; }')
    assert run(script, MESSAGE, duplicate=tracker).implicit_keep
    assert not run(script, MESSAGE, duplicate=tracker).implicit_keep


def test_variables_off_without_require():
    script = compile_script('require "fileinto"; fileinto "x${1}";')
    assert run(script, MESSAGE).actions[0].mailbox == "x${1}"


def test_enotify_methods_are_checked_at_compile_time():
    from maa_server.sieve import SieveError, compile_script

    with pytest.raises(SieveError) as info:
        compile_script('require "enotify";\nnotify "xmpp:a@b";\nnotify "mailto:a@b,c@d";\n')
    # Pigeonhole 0.5.19's words (observed in the user log)
    assert info.value.messages == [
        "line 2: error: notify command: invalid method 'xmpp'.",
        "line 3: error: notify command: mailto URI: invalid character ',' in 'to' part."]


def test_notify_tests():
    from maa_server.sieve import compile_script, run
    from maa_server.sieve.message import Envelope, SieveMessage

    script = compile_script('require ["enotify", "fileinto"];\n'
                            'if valid_notify_method ["mailto:a@example.com", "mailto:b@example.com"] '
                            '{ fileinto "A"; }\n'
                            'if valid_notify_method "xmpp:a@example.com" { fileinto "B"; }\n'
                            'if notify_method_capability "mailto:a@example.com" "Online" "maybe" '
                            '{ fileinto "C"; }\n')
    result = run(script, SieveMessage(b"Subject: x\n\nbody\n", Envelope("a@b", "c@d")))
    assert [a.mailbox for a in result.actions] == ["A", "C"]
