"""`python -m benchmarks.profile WORKLOAD...`: one workload against
maa-server alone, the server running under py-spy; prints the functions
where the time goes (own time and with callees) and keeps the collapsed
stacks (benchmarks/results/profile-*.txt, for speedscope or flamegraph.pl).

py-spy is a bench-only tool: `.venv/bin/pip install py-spy`."""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from benchmarks import servers, workloads
from benchmarks.__main__ import RESULTS, raise_fd_limit
from benchmarks.generate import cached_maildir, link_copy

WORKLOADS: dict[str, Callable[[servers.Server], Coroutine[Any, Any, Any]]] = {
    "envelope": workloads.envelope_fetch,
    "stress1": functools.partial(workloads.stress, clients=1, seconds=10.0),
    "stress50": functools.partial(workloads.stress, clients=50, seconds=10.0),
    "body": functools.partial(workloads.body_stream, tls=False),
    "bodytls": functools.partial(workloads.body_stream, tls=True),
    "search": workloads.search_text,
    "append": functools.partial(workloads.appends, count=500),
    "lmtp1": functools.partial(workloads.lmtp_deliveries, connections=1, count=400),
    "lmtp10": functools.partial(workloads.lmtp_deliveries, connections=10, count=1000),
    "pop3": workloads.pop3_retr,
    "idle": functools.partial(workloads.idle_memory, connections=1000),
}


def summarize(collapsed: Path, top: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    out = [f"{samples} samples", "", "own time:"]
    out += [f"{100 * n / samples:6.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "with callees:"]
    out += [f"{100 * n / samples:6.1f}%  {f}" for f, n in total.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("workloads", nargs="+", choices=sorted(WORKLOADS))
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--warm", action="store_true", help="run each workload once before profiling")
    parser.add_argument("--base", default="/tmp/maa-profile")
    parser.add_argument("--data", default="/tmp/maa-bench-data")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raise_fd_limit([1000])
    user = servers.ensure_user()
    srv = servers.Server("maa", Path(args.base))
    srv.prepare(user, servers.password_hash())
    source, _ = cached_maildir(Path(args.data), args.messages)
    link_copy(source, srv.maildir, user.pw_uid, user.pw_gid)
    subprocess.run(["chown", f"{user.pw_uid}:{user.pw_gid}", str(srv.home)], check=True)
    srv.start(user)
    RESULTS.mkdir(exist_ok=True)
    try:
        for name in args.workloads:
            if args.warm:
                asyncio.run(WORKLOADS[name](srv))
            out = RESULTS / f"profile-{name}.txt"
            assert srv.proc is not None
            spy = subprocess.Popen([py_spy, "record", "--pid", str(srv.proc.pid), "--rate", "200",
                                    "--format", "raw", "--output", str(out), "--nonblocking", "--subprocesses", *os.environ.get("SPY_ARGS", "").split()],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)
            t0 = time.perf_counter()
            value: Any = asyncio.run(WORKLOADS[name](srv))
            elapsed = time.perf_counter() - t0
            spy.send_signal(2)
            spy.wait(30)
            print(f"== {name}: {value} ({elapsed:.2f} s)")
            if out.exists():
                print(summarize(out))
            else:
                print(spy.stderr.read().decode() if spy.stderr else "py-spy wrote nothing")
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
