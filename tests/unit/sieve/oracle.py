"""Pigeonhole's `sieve-test` as the oracle: run it, and read its report of
actions into the same normal form as our interpreter's result."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from maa_server.sieve import ExecutionResult

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sieve"
SIEVE_TEST = shutil.which("sieve-test")
ENVELOPE_FROM = "someone@sender.example"
RECIPIENT = "rcpt@example.com"


def normal_form_ours(result: ExecutionResult) -> list[tuple]:
    out: list[tuple] = []
    for a in result.actions:
        if a.kind == "store":
            out.append(("store", a.mailbox, frozenset(f.lower() for f in a.flags), a.create))
        elif a.kind == "redirect":
            out.append(("redirect", a.address))
        elif a.kind == "reject":
            out.append(("reject", a.reason))
        elif a.kind == "vacation":
            assert a.vacation is not None
            out.append(("vacation", a.vacation.period, a.vacation.subject))
    if not result.actions and not result.implicit_keep:
        out.append(("discard",))
    if result.implicit_keep:
        out.append(("implicit", "INBOX", frozenset(f.lower() for f in result.keep_flags)))
    return out


def normal_form_pigeonhole(report: str) -> list[tuple]:
    out: list[tuple] = []
    section = ""
    current: list = []
    for line in report.splitlines():
        s = line.strip()
        if s == "Performed actions:":
            section = "performed"
            continue
        if s == "Implicit keep:":
            section = "implicit"
            continue
        if s.startswith("* store message in folder: "):
            current = ["store" if section == "performed" else "implicit",
                       s.removeprefix("* store message in folder: "), frozenset(), False]
            out.append(current)  # type: ignore[arg-type]
        elif s.startswith("+ add IMAP flags: ") and current:
            current[2] = frozenset(s.removeprefix("+ add IMAP flags: ").lower().split())
        elif s == "+ create mailbox if it does not exist" and current:
            current[3] = True
        elif s.startswith("* redirect message to: "):
            out.append(["redirect", s.removeprefix("* redirect message to: ").strip("<>")])
            current = []
        elif s.startswith("* reject message with reason: "):
            out.append(["reject", s.removeprefix("* reject message with reason: ")])
            current = []
        elif s == "* discard":
            out.append(["discard"])
            current = []
        elif s == "* send vacation message:":
            current = ["vacation", 0, ""]
            out.append(current)
        elif s.startswith("=> seconds : ") and current and current[0] == "vacation":
            current[1] = int(s.split(":", 1)[1])
        elif s.startswith("=> subject : ") and current and current[0] == "vacation":
            current[2] = s.split(":", 1)[1].strip()
    result = []
    for item in out:
        if item[0] == "implicit":
            result.append(("implicit", item[1], item[2]))
        else:
            result.append(tuple(item))
    return result


def run_sieve_test(script: Path, message: Path) -> tuple[int, str]:
    """Runs Pigeonhole's sieve-test unprivileged in a scratch directory."""
    assert SIEVE_TEST
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        conf = Path(tmp) / "sieve.conf"
        conf.write_text(f"mail_uid = nobody\nmail_gid = nogroup\n"
                        f"mail_location = maildir:{tmp}/Maildir:LAYOUT=fs\n")
        for src in (script, message):
            shutil.copy(src, Path(tmp) / src.name)
            os.chmod(Path(tmp) / src.name, 0o644)
        os.chmod(conf, 0o644)
        proc = subprocess.run(
            [SIEVE_TEST, "-c", str(conf), "-f", ENVELOPE_FROM, "-a", RECIPIENT,
             str(Path(tmp) / script.name), str(Path(tmp) / message.name)],
            check=False, capture_output=True, text=True, timeout=30, cwd=tmp)
        return proc.returncode, proc.stdout + proc.stderr
