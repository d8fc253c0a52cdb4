"""maa-adm pw / auth test / auth lookup / user: doveadm's output, byte for byte
(src/doveadm/doveadm-pw.c, doveadm-auth.c)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from dataclasses import dataclass
from typing import Any

from maa_server.auth import schemes
from maa_server.auth.mail_access import mail_access_refusal

EX_NOUSER = 67
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78


def _fatal(message: str, status: int = EX_TEMPFAIL) -> int:
    print(f"Fatal: {message}", file=sys.stderr)
    return status


# -- pw ---------------------------------------------------------------------------

def cmd_pw(args: argparse.Namespace) -> int:
    if args.list:
        print(" ".join(schemes.DOVEADM_LIST_ORDER) + " ")
        return 0
    if args.test is not None:
        return _pw_test(args)
    scheme = (args.scheme or "CRYPT").upper()
    try:
        schemes.lookup_scheme(scheme)
    except schemes.UnknownScheme:
        return _fatal(f"Unknown scheme: {scheme}")
    password = args.password
    if password is None:
        password = getpass.getpass("Enter new password: ")
        if password != getpass.getpass("Retype new password: "):
            return _fatal("Passwords don't match!")
    try:
        hashed = schemes.generate(scheme, password, args.user or "", args.rounds or 0)
    except schemes.SchemeError as exc:
        return _fatal(str(exc))
    if args.verify:
        stored = schemes.parse_stored(hashed)
        try:
            ok = schemes.verify(stored, password, args.user or "")
        except (schemes.UnknownScheme, schemes.SchemeError) as exc:
            return _fatal(f"reverse password verification check failed: {exc}")
        if not ok:
            return _fatal("reverse password verification check failed: Password mismatch")
        print(f"{hashed} (verified)")
    else:
        print(hashed)
    return 0


def _pw_test(args: argparse.Namespace) -> int:
    hashed: str = args.test
    if not hashed.startswith("{") or "}" not in hashed:
        return _fatal("Missing {scheme} prefix from hash")
    stored = schemes.parse_stored(hashed)
    try:
        schemes.lookup_scheme(stored.scheme)
    except schemes.UnknownScheme:
        return _fatal("reverse decode check failed: Unknown scheme")
    password = args.password
    if password is None:
        password = getpass.getpass("Enter password to verify: ")
    try:
        ok = schemes.verify(stored, password, args.user or "")
    except schemes.SchemeError as exc:
        return _fatal(f"reverse password verification check failed: {exc}")
    if not ok:
        return _fatal("reverse password verification check failed: Password mismatch")
    print(f"{hashed} (verified)")
    return 0


# -- auth test / auth lookup / user -------------------------------------------------------

def _load(args: argparse.Namespace) -> tuple[Any, Any] | int:
    try:
        from maa_server.config import ConfigError, default_config_path, load_config
    except ImportError:
        return _fatal("configuration support is not available", EX_CONFIG)
    from maa_server.auth import AuthConfigError, build_authenticator

    path = getattr(args, "config", None) or default_config_path()
    import logging

    from maa_server.logs import DovecotFormatter, configure_stderr

    # In-process auth: its errors go to stderr in Dovecot's shape, without the
    # Info lines a log file would get.
    configure_stderr(logging.WARNING)
    for handler in logging.getLogger("maa").handlers:
        handler.setFormatter(DovecotFormatter(timestamp_format=""))
    try:
        cfg = load_config(path)
        return cfg, build_authenticator(cfg)
    except ConfigError as exc:
        return _fatal(f"Error in configuration file {path}: {exc}", EX_CONFIG)
    except AuthConfigError as exc:
        return _fatal(str(exc), EX_CONFIG)
    except OSError as exc:
        return _fatal(f"open({path}) failed: {exc.strerror}", EX_CONFIG)


def _client(args: argparse.Namespace) -> Any:
    """ClientInfo from doveadm's `-x key=value` auth info (service, rip, lip,
    rport, lport, session, secured...)."""
    from maa_server.auth.interface import ClientInfo

    info = dict(item.partition("=")[::2] for item in (getattr(args, "info", None) or []))
    return ClientInfo(protocol=info.get("service", "doveadm"), remote_ip=info.get("rip", ""),
                      local_ip=info.get("lip", ""),
                      remote_port=int(info["rport"]) if info.get("rport", "").isdigit() else 0,
                      local_port=int(info["lport"]) if info.get("lport", "").isdigit() else 0,
                      secured=True, session_id=info.get("session", ""))


def passdb_field_lines(user: str, fields: dict[str, str], had_userdb: bool) -> list[tuple[str, str]]:
    """The passdb reply fields as doveadm shows them: `user` first, userdb_*
    hidden; when only userdb_* fields were present doveadm shows one empty field."""
    out = [("user", user)]
    shown = [(k, v) for k, v in fields.items() if k != "user" and not k.startswith("userdb_")]
    out.extend(shown)
    if had_userdb and not shown:
        out.append(("", ""))
    return out


@dataclass(slots=True)
class PassdbAnswer:
    user: str
    final: Any  # PassdbResult
    fields: dict[str, str]
    had_userdb: bool  # explicit userdb_* fields were returned
    master: str = ""
    master_accepted: bool = False


async def _passdb_only(auth: Any, username: str, password: str | None, client: Any,
                       master: str = "") -> PassdbAnswer:
    """Run the passdb chain as `doveadm auth test/lookup` does (no userdb)."""
    from maa_server.auth.chain import PassdbResult
    from maa_server.auth.engine import AuthRequest

    mech = "PLAIN" if password is not None else ""
    # -M master: authenticate as `master`, log in as `username` (PLAIN authzid form)
    req = auth.new_request(master, client, mech, username) if master else \
        auth.new_request(username, client, mech)
    if not isinstance(req, AuthRequest):
        return PassdbAnswer(username, PassdbResult.USER_UNKNOWN, {}, False)
    req.password = password
    chain, fields = await auth.engine.run_passdbs(req, "plain" if password is not None else "lookup")
    return PassdbAnswer(req.user, chain.state.final, fields, bool(req.prefetch),
                        req.master_user, chain.state.master_accepted)


def cmd_auth_test(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if isinstance(loaded, int):
        return loaded
    _cfg, auth = loaded
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
    from maa_server.auth.chain import PassdbResult

    answer = asyncio.run(_passdb_only(auth, args.user, password, _client(args), args.master or ""))
    ok = answer.final is PassdbResult.OK
    print(f"passdb: {args.user} auth {'succeeded' if ok else 'failed'}")
    print("extra fields:")
    if ok:
        lines = passdb_field_lines(answer.user, answer.fields, answer.had_userdb)
        if answer.master:
            lines[1:1] = [("original_user", answer.master), ("auth_user", answer.master)]
        # the auth reply carries these as bare flags
        lines = [(k, "" if k in ("nologin", "proxy", "proxy_maybe") else v) for k, v in lines]
    elif answer.master and not answer.master_accepted:
        lines = [("user", answer.master)]
    elif answer.master_accepted:
        lines = [("user", answer.user), ("code", "authz_fail"),
                 ("original_user", answer.master), ("auth_user", answer.master)]
    elif answer.final is PassdbResult.USER_DISABLED:
        lines = [("user", answer.user), ("code", "user_disabled")]
    else:
        lines = [("user", answer.user)]
    for key, value in lines:
        print(f"  {key}={value}" if key and (value or key == "user") else f"  {key}")
    return 0 if ok else EX_NOPERM


def cmd_auth_lookup(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if isinstance(loaded, int):
        return loaded
    _cfg, auth = loaded
    from maa_server.auth.chain import PassdbResult

    status = 0
    for name in args.users:
        answer = asyncio.run(_passdb_only(auth, name, None, _client(args)))
        user, final, fields, had_userdb = answer.user, answer.final, answer.fields, answer.had_userdb
        if final is PassdbResult.INTERNAL_FAILURE:
            print(f"passdb lookup failed for {name}", file=sys.stderr)
            status = EX_TEMPFAIL
            continue
        if final is not PassdbResult.OK:
            print(f"passdb lookup: user {name} doesn't exist")
            status = status or EX_NOUSER
            continue
        print(f"passdb: {name}")
        for key, value in passdb_field_lines(user, fields, had_userdb):
            print(f"  {key:<10}: {value}" if value else f"  {key:<10}")
    return status


def cmd_user(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if isinstance(loaded, int):
        return loaded
    cfg, auth = loaded
    from maa_server.auth import AuthLookupError
    status = 0
    for name in args.users:
        try:
            info = asyncio.run(auth.lookup_user(name, _client(args)))
            # doveadm user also initialises the user's mail storage, which
            # refuses a uid/gid out of first_valid_uid.. (mail-storage-service.c).
            refusal = mail_access_refusal(info, cfg) if info is not None else ""
            if refusal:
                raise AuthLookupError(refusal)
        except AuthLookupError as exc:
            # doveadm prints the header, then fails (exit 75) without a reason
            # on stdout; ours goes to stderr.
            if not args.field:
                print("field\tvalue")
            sys.stdout.flush()
            print(f"userdb lookup failed for {name}: {exc}", file=sys.stderr)
            status = EX_TEMPFAIL
            continue
        if args.field:
            if info is None:
                print(f"userdb lookup: user {name} doesn't exist", file=sys.stderr)
                status = status or EX_NOUSER
                continue
            print(_user_fields(cfg, info).get(args.field, ""))
            continue
        print("field\tvalue")
        if info is None:
            print()
            print(f"userdb lookup: user {name} doesn't exist")
            status = status or EX_NOUSER
            continue
        for key, value in _user_fields(cfg, info).items():
            print(f"{key}\t{value}")
    return status


def _user_fields(cfg: Any, info: Any) -> dict[str, str]:
    """uid, gid, home, then `mail` (the userdb's or mail_location), then the rest."""
    out: dict[str, str] = {}
    if info.uid is not None:
        out["uid"] = str(info.uid)
    if info.gid is not None:
        out["gid"] = str(info.gid)
    if info.home:
        out["home"] = info.home
    mail = info.mail
    if not mail:
        mail = str(cfg.get("mail_location") or "")
    out["mail"] = mail
    for key, value in info.extra.items():
        out.setdefault(key, value)
    return out


# -- registration --------------------------------------------------------------------

def _common_auth_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", dest="socket", help="auth socket path (accepted; auth runs in-process)")
    parser.add_argument("-x", dest="info", action="append", metavar="KEY=VALUE",
                        help="auth info: service=, rip=, lip=, rport=, lport=, session=")


def register(subparsers: Any) -> None:
    pw = subparsers.add_parser("pw", help="generate or test password hashes (doveadm pw)")
    pw.add_argument("-l", dest="list", action="store_true", help="list known password schemes")
    pw.add_argument("-p", dest="password", help="password (asked twice if missing)")
    pw.add_argument("-r", dest="rounds", type=int, help="rounds / cost for the scheme")
    pw.add_argument("-s", dest="scheme", help="password scheme (default CRYPT)")
    pw.add_argument("-t", dest="test", metavar="HASH", help="verify a password against HASH")
    pw.add_argument("-u", dest="user", help="user name (DIGEST-MD5)")
    pw.add_argument("-V", dest="verify", action="store_true", help="verify the generated hash")
    pw.set_defaults(func=cmd_pw)

    auth = subparsers.add_parser("auth", help="test authentication (doveadm auth)")
    auth_sub = auth.add_subparsers(dest="auth_command", metavar="SUBCOMMAND")
    test = auth_sub.add_parser("test", help="authenticate USER with PASSWORD")
    _common_auth_args(test)
    test.add_argument("-M", dest="master", help="master user to authenticate as")
    test.add_argument("user")
    test.add_argument("password", nargs="?")
    test.set_defaults(func=cmd_auth_test)
    lookup = auth_sub.add_parser("lookup", help="passdb lookup of USER")
    _common_auth_args(lookup)
    lookup.add_argument("users", nargs="+", metavar="user")
    lookup.set_defaults(func=cmd_auth_lookup)

    user = subparsers.add_parser("user", help="userdb lookup (doveadm user)")
    user.add_argument("-f", dest="field", help="print only this field")
    _common_auth_args(user)
    user.add_argument("users", nargs="+", metavar="user")
    user.set_defaults(func=cmd_user)
