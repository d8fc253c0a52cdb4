"""`python -m benchmarks`: maa-server beside Dovecot 2.3, same data, same run.

Run as root (both servers start as root, as in production; a `maabench`
system user owns the mail). Each workload runs against both servers,
alternating (D M, M D, ...) for several rounds; the table shows each
server's median and the ratio maa/dovecot, with the direction that is
better. Results go to benchmarks/results/ (latest.txt, latest.md,
latest.json and, with matplotlib from the `bench` extra, latest.png).

    python -m benchmarks                      # everything, 3 rounds (~30 min)
    python -m benchmarks --quick              # a smoke run of a few seconds
    python -m benchmarks --only stress BODY   # workloads whose name contains a word
    python -m benchmarks --big 0 --idle 1000  # skip the 100,000-message folder and 10,000 IDLE

Generated Maildirs are kept under --data (/tmp/maa-bench-data) between runs.
`python -m benchmarks.profile WORKLOAD` runs one workload against
maa-server under py-spy and prints where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import servers, workloads
from benchmarks.generate import cached_maildir, link_copy

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Figure:
    name: str
    unit: str
    higher_is_better: bool
    dovecot: list[float]
    maa: list[float]

    def ratio(self) -> float:
        d = statistics.median(self.dovecot)
        return statistics.median(self.maa) / d if d else float("nan")


def remove_caches(maildir: Path) -> None:
    """Remove both servers' index caches (never dovecot-uidlist: UIDs are
    mail data, not cache). cur/new/tmp are not descended into."""
    for dirpath, dirnames, filenames in os.walk(maildir):
        dirnames[:] = [d for d in dirnames if d not in ("cur", "new", "tmp")]
        for name in filenames:
            if name.startswith(("dovecot.index", "dovecot.list.index", "maa-index")):
                os.unlink(os.path.join(dirpath, name))


def raise_fd_limit(idle_counts: list[int]) -> None:
    """Room for the largest IDLE run: its sockets on our side, and in
    maa-server's one process (which inherits the limit), plus other files.
    Dovecot's master sets its own children's limits from client_limit."""
    want = max(idle_counts, default=0) + 4096
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):  # no CAP_SYS_RESOURCE (a container): the hard limit it is
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard < want:
            print(f"warning: open files limited to {hard}; the big IDLE runs may fail", file=sys.stderr)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    dovecot = servers.subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} x {cpu}, {mem:.0f} GiB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}, Dovecot {dovecot}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--messages", type=int, default=10_000, help="INBOX size (default 10000)")
    parser.add_argument("--big", type=int, default=100_000,
                        help="size of the folder 'big' for the large envelope fetch (0: skip)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-rounds", type=int, default=0,
                        help="rounds for the big-folder fetches (default: --rounds; a cold one takes minutes)")
    parser.add_argument("--idle", type=int, nargs="*", default=[1000, 10_000],
                        help="idle IDLE connection counts (default 1000 10000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of timed loops")
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    parser.add_argument("--only", nargs="*", help="workload names (substrings) to run")
    parser.add_argument("--base", default="/tmp/maa-bench", help="servers' directories (recreated)")
    parser.add_argument("--data", default="/tmp/maa-bench-data", help="generated Maildirs, kept between runs")
    parser.add_argument("--results", default=str(RESULTS), help="where latest.{txt,md,json,png} go")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.big, args.rounds, args.idle, args.seconds = 50, 0, 1, [20], 0.5
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])

    servers.ensure_dovecot()
    raise_fd_limit(args.idle)
    existed = True
    try:
        servers.pwd.getpwnam(servers.BENCH_USER)
    except KeyError:
        existed = False
    user = servers.ensure_user()
    base = Path(args.base)
    pw = servers.password_hash()
    pair = [servers.Server("dovecot", base / "dovecot"), servers.Server("maa", base / "maa")]
    data = Path(args.data)
    folders = {"": args.messages} | ({"big": args.big} if args.big else {})
    try:
        total = 0
        for name, count in folders.items():
            print(f"messages: {count} in {name or 'INBOX'} (generated once under {data}) ...",
                  file=sys.stderr)
            source, size = cached_maildir(data, count)
            total += size
            for s in pair:
                if name == "":
                    s.prepare(user, pw)
                link_copy(source, s.maildir / name if name else s.maildir, user.pw_uid, user.pw_gid)
        for s in pair:
            servers.subprocess.run(["chown", f"{user.pw_uid}:{user.pw_gid}", str(s.home), str(s.maildir)],
                                   check=True)
        print(f"{total / 1e6:.1f} MB in each Maildir", file=sys.stderr)
        for s in pair:
            s.start(user)
        figures = asyncio.run(run_all(pair, args, user))
    finally:
        for s in pair:
            s.stop()
        if not existed:
            servers.remove_user()
    report(figures, args, command)
    return 0


Work = Callable[[servers.Server], Awaitable[float]]


def _plan(args: argparse.Namespace) -> list[tuple[str, str, bool, str, object]]:
    """(name, unit, higher is better, kind, work); kind "cold" restarts the
    server without caches first, "idle" returns two figures."""
    s = args.seconds
    n = args.messages
    plan: list[tuple[str, str, bool, str, object]] = [
        (f"envelope fetch {n} cold", "s", False, "cold", workloads.envelope_fetch),
        (f"envelope fetch {n} warm", "s", False, "", workloads.envelope_fetch),
    ]
    if args.big:
        big = functools.partial(workloads.envelope_fetch, mailbox="big")
        plan += [(f"envelope fetch {args.big} cold", "s", False, "big-cold", big),
                 (f"envelope fetch {args.big} warm", "s", False, "big", big)]
    plan += [
        ("stress 1 client", "ops/s", True, "", lambda srv: workloads.stress(srv, 1, s)),
        ("stress 10 clients", "ops/s", True, "", lambda srv: workloads.stress(srv, 10, s)),
        ("stress 50 clients", "ops/s", True, "", lambda srv: workloads.stress(srv, 50, s)),
        ("logins BLF-CRYPT", "logins/s", True, "", lambda srv: workloads.logins(srv, 10, s)),
        ("BODY.PEEK[] plain", "MB/s", True, "", lambda srv: workloads.body_stream(srv, False)),
        ("BODY.PEEK[] TLS", "MB/s", True, "", lambda srv: workloads.body_stream(srv, True)),
        (f"SEARCH TEXT {n}", "s", False, "", workloads.search_text),
        ("APPEND", "msg/s", True, "", lambda srv: workloads.appends(srv, max(50, int(30 * s)))),
        ("POP3 RETR all", "MB/s", True, "", workloads.pop3_retr),
        ("POP3 UIDL", "s", False, "", workloads.pop3_uidl),
        ("LMTP 1 conn", "msg/s", True, "", lambda srv: workloads.lmtp_deliveries(srv, 1, max(20, int(20 * s)))),
        ("LMTP 10 conns", "msg/s", True, "",
         lambda srv: workloads.lmtp_deliveries(srv, 10, max(50, int(50 * s)))),
    ]
    for count in args.idle:
        plan.append((f"IDLE {count}: PSS per conn", "KiB", False, "idle",
                     functools.partial(workloads.idle_memory, connections=count,
                                       settle=min(2.0, s), window=min(10.0, 2 * s))))
    if args.only:
        plan = [p for p in plan if any(o.lower() in p[0].lower() for o in args.only)]
    return plan


async def run_all(pair: list[servers.Server], args: argparse.Namespace, user: Any) -> list[Figure]:
    figures: list[Figure] = []
    for name, unit, higher, kind, work in _plan(args):
        fig = Figure(name, unit, higher, [], [])
        extra = Figure(name.replace("PSS per conn", "CPU idle"), "CPU s/min", False, [], []) \
            if kind == "idle" else None
        rounds = (args.big_rounds or args.rounds) if kind.startswith("big") else args.rounds
        for rnd in range(rounds):
            order = pair if rnd % 2 == 0 else pair[::-1]
            for srv in order:
                if kind.endswith("cold"):
                    srv.stop()
                    remove_caches(srv.maildir)
                    srv.start(user)
                elif kind == "idle":
                    # A fresh server: memory freed by earlier workloads would
                    # otherwise be reused and hide what the sessions cost.
                    srv.stop()
                    srv.start(user)
                if kind == "idle":
                    value, cpu = await work(srv)  # type: ignore[operator]
                    assert extra is not None
                    (extra.dovecot if srv.name == "dovecot" else extra.maa).append(cpu)
                else:
                    value = await work(srv)  # type: ignore[operator]
                (fig.dovecot if srv.name == "dovecot" else fig.maa).append(value)
        print(f"{name}: dovecot {statistics.median(fig.dovecot):.3f}  maa {statistics.median(fig.maa):.3f}",
              file=sys.stderr)
        figures.append(fig)
        if extra:
            figures.append(extra)
    return figures


def _ratio_text(f: Figure) -> str:
    r = f.ratio()
    if f.unit == "CPU s/min" and not statistics.median(f.dovecot):
        return "-"
    return f"{r:.2f}"


def report(figures: list[Figure], args: argparse.Namespace, command: str) -> None:
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = (f"maa-server vs Dovecot 2.3 — {args.messages} messages in INBOX, {args.rounds} rounds "
              f"alternating, medians; {stamp}")
    rounds = f"{args.rounds} rounds" + (f" ({args.big_rounds} for the big folder)" if args.big_rounds else "")
    rows = [header, f"machine: {machine()}", f"command: {command}", "",
            f"{'workload':<30} {'unit':<10} {'dovecot':>12} {'maa':>12} {'maa/dovecot':>12}  better"]
    md = [f"Run {stamp}", "", f"- machine: {machine()}", f"- command: `{command}`",
          f"- {rounds}, servers alternating A B / B A, median of the rounds", "",
          "| workload | unit | Dovecot | maa-server | maa/Dovecot | better |",
          "|---|---|---:|---:|---:|---|"]
    for f in figures:
        d, m = statistics.median(f.dovecot), statistics.median(f.maa)
        better = "higher" if f.higher_is_better else "lower"
        rows.append(f"{f.name:<30} {f.unit:<10} {d:>12.3f} {m:>12.3f} {_ratio_text(f):>12}  {better}")
        md.append(f"| {f.name} | {f.unit} | {d:.3f} | {m:.3f} | {_ratio_text(f)} | {better} |")
    table = "\n".join(rows)
    print(table)
    (results / "latest.txt").write_text(table + "\n")
    (results / "latest.md").write_text("\n".join(md) + "\n")
    (results / "latest.json").write_text(json.dumps(
        [f.__dict__ | {"ratio": f.ratio()} for f in figures], indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    # Plot as "times better than Dovecot" so that right is always good.
    shown = [f for f in figures if _ratio_text(f) != "-" and statistics.median(f.maa)]
    names = [f.name for f in shown]
    values = [f.ratio() if f.higher_is_better else 1 / f.ratio() for f in shown]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
    ax.barh(names, values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("maa-server relative to Dovecot (>1 is better)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(results / "latest.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
