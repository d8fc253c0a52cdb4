"""maa-adm reload / stop / who / kick: talk to the running daemon over its
control socket (`<base_dir>/maa-control`), printing what doveadm prints
(output shapes observed from doveadm 2.3.19; src/doveadm/doveadm-who.c,
doveadm-kick.c, doveadm-print-table.c)."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import sys
from dataclasses import dataclass
from typing import Any

from maa_server.daemon.control import ControlUnavailable, call, control_path

# doveadm's exit codes (doveadm.h / sysexits.h)
EX_USAGE = 64
EX_TEMPFAIL = 75
EX_NOTFOUND = 68  # DOVEADM_EX_NOTFOUND: "no users kicked"
EX_CONFIG = 78
EX_FATAL = 89  # lib/failures.h FATAL_DEFAULT: doveconf's exit on a config error
# doveadm-print-table.c: the table fills an 80-column line unless stdout
# is a terminal (then its width, at least 30).
DEFAULT_COLUMNS = 80
MIN_COLUMNS = 30


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("reload", help="reload the configuration of the running server")
    p.set_defaults(func=cmd_reload)
    p = subparsers.add_parser("stop", help="stop the running server")
    p.set_defaults(func=cmd_stop)
    p = subparsers.add_parser("who", help="show who is logged in")
    p.add_argument("-1", dest="one_line", action="store_true", help="one line per connection")
    p.add_argument("masks", nargs="*", metavar="MASK", help="user name mask (* ?) and/or IP[/bits]")
    p.set_defaults(func=cmd_who)
    p = subparsers.add_parser("kick", help="disconnect users")
    p.add_argument("-f", dest="force", action="store_true",
                   help="accepted for doveadm compatibility (every session is its own connection)")
    p.add_argument("masks", nargs="*", metavar="MASK", help="user name mask (* ?) and/or IP[/bits]")
    p.set_defaults(func=cmd_kick)


def socket_path(args: Any) -> str:
    """<base_dir>/maa-control of the configuration maa-adm was pointed at."""
    from maa_server.config import ConfigError, default_config_path, load_config

    embedded = getattr(args, "config", None) is None
    config_path = str(default_config_path()) if embedded else str(args.config)
    try:
        # Only base_dir is needed: `<file` values (keys) are not read.
        cfg = load_config(config_path, read_files=False)
    except ConfigError as exc:
        raise ConfigUnreadable(str(exc)) from exc
    base_dir = str(cfg.get("base_dir") or "/run/dovecot")
    if embedded and not os.path.isabs(base_dir):
        # The embedded conf's relative paths mean the checkout (see conf/maa.conf).
        from maa_server.daemon.embedded import checkout_root

        base_dir = str(checkout_root(config_path) / base_dir)
    return control_path(base_dir)


class ConfigUnreadable(Exception):
    """The configuration maa-adm was pointed at has an error."""


def _request(args: Any, request: dict[str, Any]) -> dict[str, Any] | int:
    """The daemon's answer, or the exit code after printing doveadm's
    `Fatal:` line: EX_TEMPFAIL when the daemon is not running, 89 (as
    doveconf's fatal error) when the configuration cannot be read."""
    try:
        return call(socket_path(args), request)
    except ConfigUnreadable as exc:
        print(f"Fatal: {exc}", file=sys.stderr)
        return EX_FATAL
    except ControlUnavailable as exc:
        if request.get("command") in ("reload", "stop"):
            print(f"Fatal: maa-server is not running ({exc})", file=sys.stderr)
        else:
            print(f"Fatal: {exc}", file=sys.stderr)
        return EX_TEMPFAIL


def cmd_reload(args: Any) -> int:
    reply = _request(args, {"command": "reload"})
    if isinstance(reply, int):
        return reply
    if not reply.get("ok"):
        print(f"Error: reload failed, the old configuration keeps serving: {reply.get('error')}",
              file=sys.stderr)
        return EX_CONFIG
    return 0


def cmd_stop(args: Any) -> int:
    reply = _request(args, {"command": "stop"})
    if isinstance(reply, int):
        return reply
    return 0 if reply.get("ok") else EX_TEMPFAIL


# --- masks (doveadm-who.c who_parse_args / who_line_filter_match) ----------

class UsageError(Exception):
    """Bad masks; str() is doveadm's error text."""


@dataclass(frozen=True)
class WhoFilter:
    """At most one user name mask and one network; both must match."""

    username: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    def user_matches(self, user: str) -> bool:
        return self.username is None or wildcard_match_icase(user, self.username)

    def ip_matches(self, ip: str) -> bool:
        if self.network is None:
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return address.version == self.network.version and address in self.network

    def matches(self, session: dict[str, Any]) -> bool:
        return self.user_matches(str(session["user"])) and self.ip_matches(str(session["ip"]))


def wildcard_match_icase(value: str, mask: str) -> bool:
    """Dovecot's wildcard_match_icase(): `*` and `?` only, case-blind."""
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in mask)
    return re.fullmatch(pattern, value, re.IGNORECASE | re.DOTALL) is not None


def parse_masks(masks: list[str]) -> WhoFilter:
    username: str | None = None
    network = None
    for mask in masks:
        try:
            parsed = ipaddress.ip_network(mask, strict=False)
        except ValueError:
            if username is not None:
                raise UsageError("Multiple username masks not supported") from None
            username = mask
            continue
        if network is not None:
            raise UsageError("Multiple network masks not supported")
        network = parsed
    return WhoFilter(username, network)


# --- doveadm's table printer -------------------------------------------------

@dataclass(frozen=True)
class Column:
    title: str
    right: bool = False   # DOVEADM_PRINT_HEADER_FLAG_RIGHT_JUSTIFY
    expand: bool = False  # DOVEADM_PRINT_HEADER_FLAG_EXPAND


def terminal_columns() -> int:
    if not sys.stdout.isatty():
        return DEFAULT_COLUMNS
    return max(MIN_COLUMNS, shutil.get_terminal_size((DEFAULT_COLUMNS, 24)).columns)


def format_table(columns: list[Column], rows: list[list[str]], width: int = DEFAULT_COLUMNS) -> str:
    """doveadm-print-table.c: each column as wide as its widest value or
    title; on a line shorter than `width`, half the spare room goes to the
    first EXPAND column (the last one when none expands). Every cell is
    padded, the last too, so lines carry trailing spaces as doveadm's do."""
    lengths = [len(c.title) for c in columns]
    minimums = list(lengths)
    for row in rows:
        for i, value in enumerate(row):
            lengths[i] = max(lengths[i], len(value))
            minimums[i] = min(minimums[i], len(value))
    total = sum(lengths) + len(lengths) - 1
    while total > width:
        # Shrink from the right exactly as doveadm does: a column that can
        # take the whole excess takes it; others lose half their slack
        # (without the total being recounted, so one pass is all there is).
        # Values are never cut: printf's %-*s lets them overflow.
        before = total
        for i in range(len(columns) - 1, -1, -1):
            diff = lengths[i] - minimums[i]
            if total - diff <= width:
                lengths[i] -= total - width
                total = width
                break
            if diff > 0:
                lengths[i] -= 1 if diff == 1 else diff // 2
        if total == before:
            break
    if total < width:
        grow = next((i for i, c in enumerate(columns) if c.expand), len(columns) - 1)
        lengths[grow] += (width - total) // 2

    def line(cells: list[str]) -> str:
        out = []
        for i, value in enumerate(cells):
            right = columns[i].right
            out.append(value.rjust(lengths[i]) if right else value.ljust(lengths[i]))
        return " ".join(out)

    text = [line([c.title for c in columns])]
    text.extend(line(row) for row in rows)
    return "\n".join(text) + "\n"


WHO_COLUMNS = [Column("username"), Column("#", right=True), Column("proto"), Column("(pids)"),
               Column("(ips)")]
WHO_ONE_LINE_COLUMNS = [Column("username", expand=True), Column("proto"), Column("pid"), Column("ip")]


def who_rows(sessions: list[dict[str, Any]], wanted: WhoFilter) -> list[list[str]]:
    """One row per (user, protocol): connection count, pids and ips in the
    order first seen; a group is shown when its user matches and any of its
    ips is in the network (who_user_filter_match)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in sessions:
        groups.setdefault((str(s["user"]), str(s["protocol"])), []).append(s)
    rows = []
    for (user, protocol), members in groups.items():
        ips = list(dict.fromkeys(str(m["ip"]) for m in members if m["ip"]))
        if not wanted.user_matches(user):
            continue
        if wanted.network is not None and not any(wanted.ip_matches(ip) for ip in ips):
            continue
        pids = " ".join(dict.fromkeys(str(m["pid"]) for m in members))
        rows.append([user, str(len(members)), protocol, f"({pids})", f"({' '.join(ips)})"])
    return rows


def _masks_and_sessions(args: Any) -> tuple[WhoFilter, list[dict[str, Any]]] | int:
    """The user/ip masks on the command line and every session the master
    knows, or the exit code of what went wrong (said on stderr)."""
    try:
        wanted = parse_masks(args.masks)
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EX_USAGE
    reply = _request(args, {"command": "who"})
    if isinstance(reply, int):
        return reply
    return wanted, list(reply.get("sessions", []))


def cmd_who(args: Any) -> int:
    found = _masks_and_sessions(args)
    if isinstance(found, int):
        return found
    wanted, sessions = found
    if args.one_line:
        rows = [[str(s["user"]), str(s["protocol"]), str(s["pid"]), str(s["ip"])]
                for s in sessions if wanted.matches(s)]
        sys.stdout.write(format_table(WHO_ONE_LINE_COLUMNS, rows, terminal_columns()))
    else:
        sys.stdout.write(format_table(WHO_COLUMNS, who_rows(sessions, wanted), terminal_columns()))
    return 0


def cmd_kick(args: Any) -> int:
    """Every matching session is told `Server shutting down.` and closed,
    as doveadm's SIGTERM to the session's process does."""
    if not args.masks:
        print("Error: user and/or ip[/bits] must be specified.", file=sys.stderr)
        return EX_USAGE
    found = _masks_and_sessions(args)
    if isinstance(found, int):
        return found
    wanted, sessions = found
    chosen = [s for s in sessions if wanted.matches(s)]
    kicked: list[str] = []
    if chosen:
        reply = _request(args, {"command": "kick", "sessions": [s["session"] for s in chosen]})
        if isinstance(reply, int):
            return reply
        kicked = sorted({str(u) for u in reply.get("kicked", {})})
    if not kicked:
        print("no users kicked")
        return EX_NOTFOUND
    # doveadm writes the names through its own output stream, which reaches
    # a pipe before the stdio heading (observed: names first).
    sys.stdout.write("".join(f"{user} " for user in kicked))
    sys.stdout.write("kicked connections from the following users:\n\n")
    return 0
