"""Smoke run of the benchmark harness (benchmarks/): both servers start on
generated data, a few workloads run against each, and the side-by-side
table comes out. Timings are never asserted: this proves the harness works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dovecot"), reason="Dovecot is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the harness starts both servers as root"),
]


@pytest.fixture
def bench_dir() -> Path:
    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700 and Dovecot's mail
    # processes run as the benchmark user, who must reach the home.
    path = Path(tempfile.mkdtemp(prefix="maa-bench-smoke-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_quick_run_produces_a_table_with_both_servers(bench_dir: Path) -> None:
    results = bench_dir / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "envelope", "stress 1 client", "POP3 UIDL",
         "LMTP 1 conn", "IDLE", "--base", str(bench_dir / "servers"), "--data", str(bench_dir / "data"),
         "--results", str(results)],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads((results / "latest.json").read_text())
    names = [f["name"] for f in figures]
    assert names == ["envelope fetch 50 cold", "envelope fetch 50 warm", "stress 1 client", "POP3 UIDL",
                     "LMTP 1 conn", "IDLE 20: PSS per conn", "IDLE 20: CPU idle"]
    for figure in figures:
        assert len(figure["dovecot"]) == len(figure["maa"]) == 1
    # Every throughput and time was measured on both servers.
    for figure in figures[:5]:
        assert figure["dovecot"][0] > 0 and figure["maa"][0] > 0, figure
    table = (results / "latest.md").read_text()
    assert "| workload | unit | Dovecot | maa-server | maa/Dovecot | better |" in table
    assert "| stress 1 client | ops/s |" in table
    assert "command: `python -m benchmarks --quick" in table
