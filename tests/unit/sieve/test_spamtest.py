"""spamtest / spamtestplus / virustest values against Pigeonhole's
sieve-test run with the same plugin settings (score, strlen and text
status types)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from maa_server.sieve import compile_script, run
from maa_server.sieve.message import Envelope, SieveMessage
from maa_server.sieve.signatures import EXTENSIONS, OPTIONAL_EXTENSIONS
from maa_server.sieve.spamtest import StatusTest

from .oracle import SIEVE_TEST, normal_form_ours, normal_form_pigeonhole

SCRIPT = """require ["spamtestplus", "virustest", "relational", "comparator-i;ascii-numeric",
         "fileinto", "variables"];
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "S0"; }
if spamtest :matches "*" { fileinto "S-${1}"; }
if spamtest :percent :matches "*" { fileinto "P-${1}"; }
if virustest :matches "*" { fileinto "V-${1}"; }
"""

CONFIGS = {
    "score": {
        "sieve_spamtest_status_type": "score",
        "sieve_spamtest_status_header": r"X-Spam-Score: score=(-?[[:digit:]]+\.[[:digit:]]).*",
        "sieve_spamtest_max_value": "5.0",
        "sieve_virustest_status_type": "text",
        "sieve_virustest_status_header": r"X-Virus-Scan: Found to be (.+)\.",
        "sieve_virustest_text_value1": "clean",
        "sieve_virustest_text_value5": "infected",
    },
    "strlen": {
        "sieve_spamtest_status_type": "strlen",
        "sieve_spamtest_status_header": "X-Spam-Level",
        "sieve_spamtest_max_value": "5",
        "sieve_virustest_status_type": "score",
        "sieve_virustest_status_header": "X-Virus-Score: (.*)",
        "sieve_virustest_max_value": "10",
    },
}

MESSAGES = {
    "score": ["", "X-Spam-Score: score=-1.0", "X-Spam-Score: score=0.3", "X-Spam-Score: score=0.6",
              "X-Spam-Score: score=2.7", "X-Spam-Score: score=4.9", "X-Spam-Score: score=7.3",
              "X-Spam-Score: junk", "X-Virus-Scan: Found to be infected.", "X-Virus-Scan: Found to be clean.",
              "X-Virus-Scan: Found to be weird."],
    "strlen": ["X-Spam-Level: ", "X-Spam-Level: *", "X-Spam-Level: ***", "X-Spam-Level: ********",
               "X-Virus-Score: 2.4", "X-Virus-Score: 2.5", "X-Virus-Score: 9.9", "X-Virus-Score: 10"],
}


def pigeonhole(config: dict[str, str], message: bytes) -> str:
    assert SIEVE_TEST
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        plugin = "".join(f"  {k} = {v}\n" for k, v in config.items())
        conf = Path(tmp) / "sieve.conf"
        conf.write_text(f"mail_uid = nobody\nmail_gid = nogroup\nmail_location = maildir:{tmp}/Maildir:LAYOUT=fs\n"
                        f"plugin {{\n  sieve_extensions = +spamtest +spamtestplus +virustest\n{plugin}}}\n")
        (Path(tmp) / "s.sieve").write_text(SCRIPT)
        (Path(tmp) / "m.eml").write_bytes(message)
        for name in ("sieve.conf", "s.sieve", "m.eml"):
            os.chmod(Path(tmp) / name, 0o644)
        proc = subprocess.run([SIEVE_TEST, "-c", str(conf), str(Path(tmp) / "s.sieve"), str(Path(tmp) / "m.eml")],
                              capture_output=True, text=True, timeout=30, cwd=tmp, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout


def ours(config: dict[str, str], message: bytes) -> list[tuple]:
    script = compile_script(SCRIPT, "s", EXTENSIONS | OPTIONAL_EXTENSIONS)
    tests = {k: t for k in ("spamtest", "virustest") if (t := StatusTest.from_plugin(config, k))}
    return normal_form_ours(run(script, SieveMessage(message, Envelope("a@b", "c@d")), status_tests=tests))


@pytest.mark.skipif(SIEVE_TEST is None or shutil.which("sieve-test") is None, reason="no sieve-test")
@pytest.mark.parametrize(("kind", "header"), [(k, h) for k, hs in MESSAGES.items() for h in hs])
def test_same_values_as_pigeonhole(kind: str, header: str) -> None:
    message = ((header + "\n") if header else "").encode() + b"Subject: s\n\nbody\n"
    assert ours(CONFIGS[kind], message) == normal_form_pigeonhole(pigeonhole(CONFIGS[kind], message))


def test_not_configured_means_not_tested() -> None:
    assert ours({}, b"X-Spam-Score: score=4.0\n\nbody\n")[:3] == [
        ("store", "S0", frozenset(), False), ("store", "S-0", frozenset(), False),
        ("store", "P-0", frozenset(), False)]
