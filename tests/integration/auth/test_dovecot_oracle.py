"""The real Dovecot as the oracle for the passdb result rules: one Dovecot
and one maa authenticator read the same config (36 two-passdb chains told
apart by username_filter), and every user's login must end the same way.

Needs /usr/sbin/dovecot and root (Dovecot's auth process drops to its own
user); skipped otherwise."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from maa_server.auth.interface import AuthStatus, ClientInfo

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
RULES = ["return", "return-ok", "return-fail", "continue", "continue-ok", "continue-fail"]
# Internal failures are covered by the unit tables: a passwd-file Dovecot's
# auth user cannot read is one we (root) can, so the two cannot agree here.
FIRST = ["ok", "mismatch", "unknown"]
SECOND = ["ok", "mismatch"]
CASES = list(itertools.product(RULES, FIRST, SECOND))

pytestmark = pytest.mark.skipif(not Path(DOVECOT).exists() or os.geteuid() != 0,
                                reason="needs the real Dovecot and root")


def user_name(rule: str, first: str, second: str) -> str:
    return f"c-{rule}-{first}-{second}"


def write_setup(root: Path) -> str:
    """Config text shared by both servers; passwd-files under root."""
    first_lines, second_lines = [], []
    for rule, first, second in CASES:
        user = user_name(rule, first, second)
        if first == "ok":
            first_lines.append(f"{user}:{{PLAIN}}right")
        elif first == "mismatch":
            first_lines.append(f"{user}:{{PLAIN}}other")
        second_lines.append(f"{user}:{{PLAIN}}{'right' if second == 'ok' else 'other2'}")
    (root / "first").write_text("\n".join(first_lines) + "\n")
    (root / "second").write_text("\n".join(second_lines) + "\n")
    blocks = []
    for rule, first in itertools.product(RULES, FIRST):
        key = "result_success" if first == "ok" else "result_failure"
        path = root / "first"
        blocks.append(f"""passdb {{
  driver = passwd-file
  args = {path}
  username_filter = c-{rule}-{first}-*
  {key} = {rule}
}}
passdb {{
  driver = passwd-file
  args = {root / 'second'}
  username_filter = c-{rule}-{first}-*
}}
""")
    return "auth_failure_delay = 0\nauth_username_chars =\n" + "".join(blocks)


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[Path, str]]:
    # Not pytest's tmp_path: its parents are 0700 and Dovecot's auth process
    # runs as the dovecot user.
    root = Path(tempfile.mkdtemp(prefix="maa-auth-oracle-", dir="/tmp"))
    os.chmod(root, 0o755)
    common = write_setup(root)
    for name in ("first", "second"):
        os.chmod(root / name, 0o644)
    conf = root / "dovecot.conf"
    conf.write_text(f"base_dir = {root}/run\nprotocols =\nssl = no\nlog_path = {root}/dovecot.log\n"
                    "auth_worker_max_count = 4\n" + common)
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (root / "run" / "auth-client").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip("Dovecot did not start")
            time.sleep(0.05)
        yield root, common
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def dovecot_succeeds(root: Path, user: str, n: int) -> bool:
    # A fresh client IP per login: Dovecot's auth penalty grows per IP
    # (2, 4, 8 ... seconds) and would slow the run down.
    rip = f"10.99.{n // 200}.{n % 200 + 1}"
    done = subprocess.run([DOVEADM, "-c", str(root / "dovecot.conf"), "auth", "test", "-x", f"rip={rip}",
                           user, "right"], capture_output=True, text=True, timeout=15, check=False)
    return done.returncode == 0


def test_result_rules_match_dovecot(setup: tuple[Path, str]) -> None:
    from maa_server.auth import build_authenticator
    from maa_server.config import parse_config_text

    root, common = setup
    auth = build_authenticator(parse_config_text(common, str(root / "maa.conf")))
    client = ClientInfo(protocol="imap", remote_ip="127.0.0.1", secured=True)
    users = [user_name(*case) for case in CASES]
    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(lambda nu: dovecot_succeeds(root, nu[1], nu[0]), enumerate(users)))
    mismatches = []
    for (rule, first, second), user, theirs in zip(CASES, users, verdicts):
        ours = asyncio.run(auth.verify_plain(user, "right", client))
        if (ours.status is AuthStatus.OK) != theirs:
            mismatches.append((rule, first, second, ours.status.value, "dovecot ok" if theirs else "dovecot fail"))
    assert mismatches == []
