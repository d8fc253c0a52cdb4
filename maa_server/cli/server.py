"""maa-server: the daemon's command line (`maa-server [-c CONFIG] [-F] [--version]`).

Everything that can fail at start (configuration, certificates, ports, log
files) is done before forking, so the admin sees one clear line and a
non-zero exit instead of a daemon that silently died.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from maa_server import __version__, logs

# Dovecot's exit code for fatal start-up errors (lib/failures.h FATAL_DEFAULT).
EXIT_FATAL = 89


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maa-server", description="IMAP/POP3/LMTP server, drop-in for Dovecot 2.3")
    parser.add_argument("-c", "--config", metavar="CONFIG",
                        help="Dovecot-style configuration file (default: the embedded conf/maa.conf "
                             "with a local development setup under ./var)")
    parser.add_argument("-F", "--foreground", action="store_true",
                        help="stay in the foreground (systemd, tests); default: daemonize")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    # As `dovecot -n` / `dovecot -a` (doveconf) and `dovecot reload|stop`.
    parser.add_argument("-n", dest="dump", action="store_const", const="n",
                        help="print the settings that differ from the defaults and exit")
    parser.add_argument("-a", dest="dump", action="store_const", const="a",
                        help="print all settings and exit")
    parser.add_argument("command", nargs="?", choices=("reload", "stop"),
                        help="tell the running server to reload or stop (as maa-adm reload|stop)")
    return parser


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        print(f"maa-server {__version__} (Dovecot 2.3 compatible)")
        return 0
    if args.dump or args.command:
        return _admin(args)
    logs.configure_stderr()
    # A reload or log-reopen request that arrives while starting must not
    # kill the process (their default action); the loop installs handlers.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 0


def _admin(args: Any) -> int:
    """`maa-server -n|-a|reload|stop`: what `dovecot` does with them, through
    maa-adm's own commands (config dump; control socket)."""
    from maa_server.cli import adm

    argv = ["-c", args.config] if args.config else []
    if args.dump:
        argv += ["config", f"-{args.dump}"]
    else:
        argv.append(args.command)
    return adm.main(argv)


def _fatal(message: str) -> int:
    print(f"maa-server: Fatal: {message}", file=sys.stderr)
    return EXIT_FATAL


def _run(args: Any) -> int:
    from maa_server.daemon import daemonize as dz
    from maa_server.daemon import embedded
    from maa_server.daemon.master import (
        Master,
        StartupError,
        bind_all,
        load_generation,
        load_handlers,
        usable_specs,
    )
    from maa_server.protocols.context import SessionRegistry

    demo: embedded.DemoLogin | None = None
    if args.config is None:
        from maa_server.config import default_config_path

        config_path = str(default_config_path())
        if not os.path.exists(config_path):
            return _fatal(f"no -c given and the embedded configuration {config_path} is missing")
        root = embedded.checkout_root(config_path)
        # The embedded conf's relative paths (var/...) mean the checkout.
        os.chdir(root)
        try:
            demo = embedded.prepare(root)
        except OSError as exc:
            return _fatal(f"cannot prepare {root / 'var'}: {exc}")
    else:
        config_path = os.path.abspath(args.config)

    registry = SessionRegistry()
    try:
        generation = load_generation(config_path, registry)
    except StartupError as exc:
        return _fatal(str(exc))
    except Exception as exc:  # a bug, but still one line at start, as promised
        return _fatal(f"{config_path}: {type(exc).__name__}: {exc}")
    cfg = generation.config
    base_dir = str(cfg.get("base_dir") or "/run/dovecot")
    try:
        os.makedirs(base_dir, mode=0o755, exist_ok=True)
        if not os.access(base_dir, os.W_OK | os.X_OK):
            return _fatal(f"base_dir {base_dir} is not writable")
    except OSError as exc:
        return _fatal(f"can't create base_dir {base_dir}: {exc.strerror}")
    other = dz.running_pid(base_dir)
    if other is not None:
        return _fatal(f"maa-server is already running with PID {other} "
                      f"(read from {os.path.join(base_dir, 'master.pid')})")
    for warning in getattr(cfg, "warnings", []):
        print(f"maa-server: Warning: {warning}", file=sys.stderr)
    handlers = load_handlers({spec.protocol for spec in generation.specs})
    try:
        listeners = bind_all(usable_specs(generation.specs, handlers, generation.tls))
    except StartupError as exc:
        return _fatal(str(exc))
    if not listeners:
        return _fatal("nothing to listen on (check protocols, listen and the inet_listener ports)")
    try:
        logs.configure_logging(cfg)
    except OSError as exc:
        return _fatal(f"can't open log file {exc.filename}: {exc.strerror}")

    _announce(config_path, listeners, demo, cfg)
    from maa_server.daemon import privsep

    # The embedded development setup (no -c) keeps everything in the
    # checkout, where the demo user's worker could not reach: one process.
    separate = privsep.wanted() and demo is None
    if separate:
        from maa_server.daemon.privsep.logins import LoginUserMissing, login_credentials

        try:
            login_credentials(cfg)
        except LoginUserMissing as exc:
            return _fatal(str(exc))
    if os.geteuid() == 0 and not separate:
        why = "the embedded development configuration" if demo is not None else privsep.SINGLE_PROCESS_ENV
        logs.get_log("master").warning(f"started as root with {why}: every session runs as root")
    if not args.foreground:
        dz.daemonize()
    pid_file = dz.write_pid_file(base_dir)
    for warning in getattr(cfg, "warnings", []):
        logs.get_log("master").warning(warning)

    async def serve() -> int:
        if separate:
            from maa_server.daemon.privsep.master import PrivsepMaster

            master: Master = PrivsepMaster(config_path, generation, listeners, handlers)
        else:
            master = Master(config_path, generation, listeners, handlers)
        return await master.run()

    factory = _event_loop_factory()
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(serve())
    finally:
        try:
            os.unlink(pid_file)
        except OSError:
            pass


def _announce(config_path: str, listeners: list[Any], demo: Any, cfg: Any) -> None:
    """What a person starting it wants to see: where it listens, how to log in."""
    out = sys.stdout
    print(f"maa-server {__version__} using {config_path}", file=out)
    for state in listeners:
        print(f"  listening on {state.spec.label}", file=out)
    if demo is not None:
        log_path = str(cfg.get("log_path") or "syslog")
        if log_path not in ("syslog", "/dev/stderr") and not os.path.isabs(log_path):
            log_path = os.path.abspath(log_path)
        print(f"  demo login: user {demo.user}, password {demo.password}", file=out)
        print(f"  mail under {os.getcwd()}/var/mail, log in {log_path}", file=out)
        tls = [s.spec for s in listeners if s.spec.ssl and s.spec.protocol == "imap"]
        if tls:
            print(f"  try: openssl s_client -quiet -connect {tls[0].address}:{tls[0].port}"
                  "   (self-signed certificate: var/ssl/maa-server.pem)", file=out)
        print("  Ctrl-C stops it; `.venv/bin/maa-adm who` (or reload, kick USER, stop) talks to it",
              file=out)
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
