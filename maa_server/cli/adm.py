"""maa-adm: the doveadm-like admin tool.

Each family of subcommands lives in its own module with a
`register(subparsers)` that adds its parsers and sets `func`; this file only
dispatches. A command returns its exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# module name -> what it provides (pw; auth test/lookup; user; config; who/kick/reload/stop ...)
COMMAND_MODULES = (
    "maa_server.cli.adm_auth",
    "maa_server.cli.adm_config",
    "maa_server.cli.adm_control",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maa-adm", description="maa-server administration (doveadm-like)")
    parser.add_argument("-c", "--config", help="configuration file (default: the embedded one)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that family is not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config is None:
        # The embedded conf names its files relative to the checkout, as
        # maa-server reads them (see conf/maa.conf and maa_server/daemon/embedded.py).
        from maa_server.config import default_config_path

        os.chdir(default_config_path().resolve().parent.parent)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 64  # EX_USAGE, as doveadm
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
