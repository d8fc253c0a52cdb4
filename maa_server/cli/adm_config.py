"""maa-adm config: print the effective configuration like `doveconf`.

`maa-adm config` prints everything (doveconf -a), `-n` only what differs from the
defaults, `-P` shows secrets, `-f protocol=imap -f local=IP -f remote=IP -f
local_name=HOST` applies filters, and setting names print just those values
(`-h` without the name). A configuration error is one line on stderr and exit
status 89, doveconf's (src/config/doveconf.c: EX_CONFIG)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from maa_server.config import ConfigError, default_config_path, load_config
from maa_server.config.dump import dump_config
from maa_server.config.parser import did_you_mean
from maa_server.config.table import SETTINGS
from maa_server.config.values import format_value

EX_CONFIG = 89
FILTER_NAMES = {"protocol": "protocol", "service": "protocol", "local": "local_ip", "lip": "local_ip",
                "remote": "remote_ip", "rip": "remote_ip", "local_name": "local_name"}


def parse_filters(items: list[str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in FILTER_NAMES:
            raise ValueError(f"Invalid filter: {item} (use protocol=, local=, remote= or local_name=)")
        filters[FILTER_NAMES[name]] = value
    return filters


def cmd_config(args: argparse.Namespace) -> int:
    path = args.config if args.config is not None else str(default_config_path())
    try:
        filters = parse_filters(args.filter or [])
    except ValueError as exc:
        print(f"Fatal: {exc}", file=sys.stderr)
        return 64
    try:
        # Like doveconf, `<file` values are shown as `<path` and not read.
        cfg = load_config(path, read_files=False)
    except ConfigError as exc:
        print(f"Fatal: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.names:
        return print_names(cfg, args.names, filters, args.hide_key)
    if filters:
        # Effective values for one connection: every setting, filters applied.
        settings = cfg.settings(**filters)
        for name in sorted(SETTINGS):
            print(f"{name} = {format_value(SETTINGS[name][0], settings[name])}")
        return 0
    sys.stdout.write(dump_config(cfg, non_default=args.non_default, show_secrets=args.show_secrets))
    return 0


def print_names(cfg: Any, names: list[str], filters: dict[str, str], hide_key: bool) -> int:
    settings = cfg.settings(**filters)
    status = 0
    for name in names:
        if name not in SETTINGS:
            print(f"Fatal: Unknown setting: {name}{did_you_mean(name, SETTINGS)}", file=sys.stderr)
            status = 1
            continue
        origin = settings.origin(name)
        value = origin.dump if origin is not None and origin.from_file else \
            format_value(SETTINGS[name][0], settings[name])
        print(value if hide_key else f"{name} = {value}")
    return status


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="print the configuration (like doveconf)",
                                   description="Print the effective configuration in doveconf's format.",
                                   add_help=False)  # -h is doveconf's "hide key"
    parser.add_argument("--help", action="help", help="show this help message and exit")
    parser.add_argument("-n", dest="non_default", action="store_true",
                        help="only settings changed from the defaults (doveconf -n)")
    parser.add_argument("-a", dest="non_default", action="store_false",
                        help="all settings (the default)")
    parser.add_argument("-P", dest="show_secrets", action="store_true", help="show passwords and keys")
    parser.add_argument("-h", dest="hide_key", action="store_true",
                        help="with setting names: print only the values")
    parser.add_argument("-f", dest="filter", action="append", metavar="NAME=VALUE",
                        help="filter: protocol=imap, local=IP, remote=IP, local_name=HOST")
    parser.add_argument("names", nargs="*", metavar="SETTING", help="print only these settings")
    parser.set_defaults(func=cmd_config)
