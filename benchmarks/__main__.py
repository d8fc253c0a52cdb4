"""`python -m benchmarks`: maa-server beside Dovecot 2.3, same data, same run.

Each workload runs against both servers, alternating (D M, M D, ...) for
several rounds; the table shows each server's median and the ratio
maa/dovecot, with the direction that is better. Results go to
benchmarks/results/ as JSON, a text table and (with matplotlib) a PNG."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import servers, workloads
from benchmarks.generate import write_maildir

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
    for path in maildir.rglob("*"):
        if path.name.startswith(("dovecot.index", "dovecot.list.index", "maa-index")):
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--messages", type=int, default=10_000, help="mailbox size (default 10000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=int, default=1000, help="idle IDLE connections")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of timed loops")
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    parser.add_argument("--only", nargs="*", help="workload names to run")
    parser.add_argument("--base", default="/tmp/maa-bench")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.rounds, args.idle, args.seconds = 50, 1, 20, 1.0

    servers.ensure_dovecot()
    existed = True
    try:
        servers.pwd.getpwnam(servers.BENCH_USER)
    except KeyError:
        existed = False
    user = servers.ensure_user()
    base = Path(args.base)
    pw = servers.password_hash()
    pair = [servers.Server("dovecot", base / "dovecot"), servers.Server("maa", base / "maa")]
    try:
        for s in pair:
            s.prepare(user, pw)
        print(f"generating {args.messages} messages ...", file=sys.stderr)
        total = write_maildir(pair[0].maildir, args.messages, uid=user.pw_uid, gid=user.pw_gid)
        shutil.copytree(pair[0].maildir, pair[1].maildir, symlinks=True)
        servers.subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(pair[1].home),
                                str(pair[0].home)], check=True)
        print(f"{total / 1e6:.1f} MB in each Maildir", file=sys.stderr)
        for s in pair:
            s.start(user)
        figures = asyncio.run(run_all(pair, args, user))
    finally:
        for s in pair:
            s.stop()
        if not existed:
            servers.remove_user()
    report(figures, args)
    return 0


def _plan(args: argparse.Namespace) -> list[tuple[str, str, bool, object]]:
    s = args.seconds
    plan: list[tuple[str, str, bool, object]] = [
        ("envelope fetch cold", "s", False, "cold"),
        ("envelope fetch warm", "s", False, workloads.envelope_fetch),
        ("stress 1 client", "ops/s", True, lambda srv: workloads.stress(srv, 1, s)),
        ("stress 10 clients", "ops/s", True, lambda srv: workloads.stress(srv, 10, s)),
        ("stress 50 clients", "ops/s", True, lambda srv: workloads.stress(srv, 50, s)),
        ("logins BLF-CRYPT", "logins/s", True, lambda srv: workloads.logins(srv, 10, s)),
        ("BODY.PEEK[] plain", "MB/s", True, lambda srv: workloads.body_stream(srv, False)),
        ("BODY.PEEK[] TLS", "MB/s", True, lambda srv: workloads.body_stream(srv, True)),
        ("SEARCH TEXT", "s", False, workloads.search_text),
        ("APPEND", "msg/s", True, lambda srv: workloads.appends(srv, max(50, int(30 * s)))),
        ("POP3 RETR all", "MB/s", True, workloads.pop3_retr),
        ("LMTP 1 conn", "msg/s", True, lambda srv: workloads.lmtp_deliveries(srv, 1, max(20, int(20 * s)))),
        ("LMTP 10 conns", "msg/s", True, lambda srv: workloads.lmtp_deliveries(srv, 10, max(50, int(50 * s)))),
        ("idle memory per conn", "KiB", False, "idle"),
    ]
    if args.only:
        plan = [p for p in plan if any(o.lower() in p[0].lower() for o in args.only)]
    return plan


async def run_all(pair: list[servers.Server], args: argparse.Namespace, user) -> list[Figure]:
    figures: list[Figure] = []
    for name, unit, higher, work in _plan(args):
        fig = Figure(name, unit, higher, [], [])
        extra = Figure("idle CPU", "CPU s/min", False, [], []) if work == "idle" else None
        for rnd in range(args.rounds):
            order = pair if rnd % 2 == 0 else pair[::-1]
            for srv in order:
                if work == "cold":
                    srv.stop()
                    remove_caches(srv.maildir)
                    srv.start(user)
                    value = await workloads.envelope_fetch(srv)
                elif work == "idle":
                    value, cpu = await workloads.idle_memory(srv, args.idle)
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


def report(figures: list[Figure], args: argparse.Namespace) -> None:
    RESULTS.mkdir(exist_ok=True)
    header = (f"maa-server vs Dovecot 2.3 — {args.messages} messages, {args.rounds} rounds, "
              f"medians; {time.strftime('%Y-%m-%d %H:%M')}")
    rows = [header, "",
            f"{'workload':<24} {'unit':<10} {'dovecot':>12} {'maa':>12} {'maa/dovecot':>12}  better"]
    for f in figures:
        rows.append(f"{f.name:<24} {f.unit:<10} {statistics.median(f.dovecot):>12.3f} "
                    f"{statistics.median(f.maa):>12.3f} {f.ratio():>12.2f}  "
                    f"{'higher' if f.higher_is_better else 'lower'}")
    table = "\n".join(rows)
    print(table)
    (RESULTS / "latest.txt").write_text(table + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(
        [f.__dict__ | {"ratio": f.ratio()} for f in figures], indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    # Plot as "times better than Dovecot" so that right is always good.
    names = [f.name for f in figures]
    values = [f.ratio() if f.higher_is_better else (1 / f.ratio() if f.ratio() else 0) for f in figures]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
    ax.barh(names, values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("maa-server relative to Dovecot (>1 is better)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(RESULTS / "latest.png", dpi=100)


if __name__ == "__main__":
    sys.exit(main())
