"""Our interpreter against Pigeonhole's sieve-test on a corpus of scripts
and messages: the same actions, the same implicit keep, the same flags."""

from __future__ import annotations

import pytest

from maa_server.sieve import SieveError, compile_script, run
from maa_server.sieve.message import Envelope, SieveMessage

from .oracle import (
    ENVELOPE_FROM,
    FIXTURES,
    RECIPIENT,
    SIEVE_TEST,
    normal_form_ours,
    normal_form_pigeonhole,
    run_sieve_test,
)

pytestmark = pytest.mark.skipif(SIEVE_TEST is None, reason="Pigeonhole's sieve-test is not installed")

SCRIPTS = sorted(p for p in FIXTURES.glob("*.sieve") if not p.name.startswith("err_"))
ERROR_SCRIPTS = sorted(FIXTURES.glob("err_*.sieve"))
MESSAGES = sorted(FIXTURES.glob("*.eml"))


def ours(script_path, message_path):
    script = compile_script(script_path.read_text(), script_path.stem)
    raw = message_path.read_bytes()
    return run(script, SieveMessage(raw, Envelope(ENVELOPE_FROM, RECIPIENT)))


@pytest.mark.parametrize("message", MESSAGES, ids=lambda p: p.stem)
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_same_actions_as_pigeonhole(script, message):
    code, report = run_sieve_test(script, message)
    assert code == 0, report
    expected = normal_form_pigeonhole(report)
    assert normal_form_ours(ours(script, message)) == expected, report


@pytest.mark.parametrize("script", ERROR_SCRIPTS, ids=lambda p: p.stem)
def test_same_errors_as_pigeonhole(script):
    code, report = run_sieve_test(script, MESSAGES[0])
    assert code != 0
    expected = [line.split(": ", 1)[1] for line in report.splitlines()
                if ": line " in line and "error:" in line]
    with pytest.raises(SieveError) as info:
        compile_script(script.read_text())
    assert info.value.messages == expected
