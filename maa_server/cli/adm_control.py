"""maa-adm reload / stop / who / kick: talk to the running daemon over its
control socket (`<base_dir>/maa-control`), printing what doveadm prints
(output shapes observed from doveadm 2.3.19; src/doveadm/doveadm-who.c,
doveadm-kick.c)."""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import sys
from typing import Any

from maa_server.daemon.control import ControlUnavailable, call, control_path

# doveadm's exit codes (doveadm.h / sysexits.h)
EX_TEMPFAIL = 75
EX_NOTFOUND = 68  # DOVEADM_EX_NOTFOUND: "no users kicked"
EX_CONFIG = 78


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("reload", help="reload the configuration of the running server")
    p.set_defaults(func=cmd_reload)
    p = subparsers.add_parser("stop", help="stop the running server")
    p.set_defaults(func=cmd_stop)
    p = subparsers.add_parser("who", help="show who is logged in")
    p.add_argument("-1", dest="one_line", action="store_true", help="one line per connection")
    p.add_argument("masks", nargs="*", metavar="MASK", help="user name mask (* ?) or IP/network")
    p.set_defaults(func=cmd_who)
    p = subparsers.add_parser("kick", help="disconnect users")
    p.add_argument("masks", nargs="+", metavar="USER_MASK", help="user name mask (* ?) or IP/network")
    p.set_defaults(func=cmd_kick)


def socket_path(args: Any) -> str:
    """<base_dir>/maa-control of the configuration maa-adm was pointed at."""
    from maa_server.config import ConfigError, default_config_path, load_config

    embedded = getattr(args, "config", None) is None
    config_path = str(default_config_path()) if embedded else str(args.config)
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise ControlUnavailable(str(exc)) from exc
    base_dir = str(cfg.get("base_dir") or "/run/dovecot")
    if embedded and not os.path.isabs(base_dir):
        # The embedded conf's relative paths mean the checkout (see conf/maa.conf).
        from maa_server.daemon.embedded import checkout_root

        base_dir = str(checkout_root(config_path) / base_dir)
    return control_path(base_dir)


def _request(args: Any, request: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return call(socket_path(args), request)
    except ControlUnavailable as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return None


def cmd_reload(args: Any) -> int:
    reply = _request(args, {"command": "reload"})
    if reply is None:
        return EX_TEMPFAIL
    if not reply.get("ok"):
        print(f"Error: reload failed, the old configuration keeps serving: {reply.get('error')}",
              file=sys.stderr)
        return EX_CONFIG
    return 0


def cmd_stop(args: Any) -> int:
    reply = _request(args, {"command": "stop"})
    return 0 if reply is not None and reply.get("ok") else EX_TEMPFAIL


def _matches(session: dict[str, Any], masks: list[str]) -> bool:
    """doveadm who/kick masks: a user name with wildcards, or an IP/network."""
    if not masks:
        return True
    for mask in masks:
        try:
            network = ipaddress.ip_network(mask, strict=False)
        except ValueError:
            if fnmatch.fnmatchcase(session["user"], mask):
                return True
            continue
        try:
            if ipaddress.ip_address(session["ip"]) in network:
                return True
        except ValueError:
            continue
    return False


def format_table(headers: list[str], rows: list[list[str]], right: frozenset[int] = frozenset()) -> str:
    """doveadm's table formatter: columns separated by one space, the last
    one left as is."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    lines = []
    for row in [headers, *rows]:
        cells = []
        for i, value in enumerate(row):
            if i == len(row) - 1:
                cells.append(value)
            elif i in right and row is not headers:
                cells.append(value.rjust(widths[i]))
            else:
                cells.append(value.ljust(widths[i]))
        lines.append(" ".join(cells))
    return "\n".join(lines) + "\n"


def cmd_who(args: Any) -> int:
    reply = _request(args, {"command": "who"})
    if reply is None:
        return EX_TEMPFAIL
    sessions = [s for s in reply.get("sessions", []) if _matches(s, args.masks)]
    if args.one_line:
        rows = [[s["user"], s["protocol"], str(s["pid"]), s["ip"]] for s in sessions]
        sys.stdout.write(format_table(["username", "proto", "pid", "ip"], rows))
        return 0
    # One line per (user, protocol): connection count, pids, ips.
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in sessions:
        groups.setdefault((s["user"], s["protocol"]), []).append(s)
    rows = []
    for (user, protocol), members in groups.items():
        pids = " ".join(dict.fromkeys(str(m["pid"]) for m in members))
        ips = " ".join(dict.fromkeys(m["ip"] for m in members))
        rows.append([user, str(len(members)), protocol, f"({pids})", f"({ips})"])
    sys.stdout.write(format_table(["username", "#", "proto", "(pids)", "(ips)"], rows, right=frozenset({1})))
    return 0


def cmd_kick(args: Any) -> int:
    who = _request(args, {"command": "who"})
    if who is None:
        return EX_TEMPFAIL
    users = list(dict.fromkeys(s["user"] for s in who.get("sessions", []) if _matches(s, args.masks)))
    if not users:
        print("no users kicked")
        return EX_NOTFOUND
    reply = _request(args, {"command": "kick", "users": users})
    if reply is None:
        return EX_TEMPFAIL
    kicked = list(reply.get("kicked", {}))
    if not kicked:
        print("no users kicked")
        return EX_NOTFOUND
    # doveadm 2.3 writes the user list before the heading (observed output).
    print(" ".join(kicked) + " kicked connections from the following users:\n")
    return 0
