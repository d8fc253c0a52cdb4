"""System users: passwd passdb/userdb (getpwnam) and shadow passdb.

Lookups run in a thread because NSS may block (LDAP, sssd). /etc/shadow is
read directly: Python's `spwd` module is gone in 3.13.
"""

from __future__ import annotations

import pwd
from collections.abc import Mapping

from maa_server.auth.chain import PassdbResult
from maa_server.auth.drivers.base import (
    DriverError,
    PassdbDriver,
    PassdbLookup,
    UserdbDriver,
)
from maa_server.auth.fields import parse_fields
from maa_server.auth.varexpand import ExpansionError, expand
from maa_server.auth.workers import run_blocking

SHADOW_PATH = "/etc/shadow"


def _check_blocking_args(args: str, kind: str) -> bool:
    """True when lookups run "in a worker" (the default blocking=yes)."""
    for word in args.split():
        if word not in ("blocking=no", "blocking=yes"):
            raise DriverError(f"{kind}: Unknown setting: {word}")
    return "blocking=no" not in args.split()


def valid_system_password(password: str) -> bool:
    """IS_VALID_PASSWD() of passdb-passwd.c / passdb-shadow.c: empty, `*` or
    `!` mean a locked account."""
    return bool(password) and password[0] not in "*!"


def _getpwnam(user: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        return None


class PasswdPassdb(PassdbDriver):
    name = "passwd"
    default_scheme = "CRYPT"

    def __init__(self, args: str) -> None:
        self.worker = _check_blocking_args(args, "passdb passwd")

    async def lookup(self, user: str, variables: Mapping[str, str]) -> PassdbLookup:
        entry = await run_blocking(_getpwnam, user)
        if entry is None:
            return PassdbLookup(PassdbResult.USER_UNKNOWN, error="unknown user")
        if not valid_system_password(entry.pw_passwd):
            return PassdbLookup(PassdbResult.USER_DISABLED, error="invalid password field")
        # `user` fixes the case to the canonical system name
        return PassdbLookup(PassdbResult.OK, entry.pw_passwd, {"user": entry.pw_name})


def read_shadow_entry(user: str, path: str = SHADOW_PATH) -> str | None:
    """The password field of `user` in /etc/shadow, or None."""
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            fields = line.rstrip("\n").split(":")
            if len(fields) >= 2 and fields[0] == user:
                return fields[1]
    return None


class ShadowPassdb(PassdbDriver):
    name = "shadow"
    default_scheme = "CRYPT"
    shadow_path = SHADOW_PATH

    def __init__(self, args: str) -> None:
        self.worker = _check_blocking_args(args, "passdb shadow")

    async def lookup(self, user: str, variables: Mapping[str, str]) -> PassdbLookup:
        try:
            password = await run_blocking(read_shadow_entry, user, self.shadow_path)
        except OSError as exc:
            return PassdbLookup(PassdbResult.INTERNAL_FAILURE,
                                error=f"open({self.shadow_path}) failed: {exc.strerror}")
        if password is None:
            return PassdbLookup(PassdbResult.USER_UNKNOWN, error="unknown user")
        if not valid_system_password(password):
            return PassdbLookup(PassdbResult.USER_DISABLED, error="invalid password field")
        return PassdbLookup(PassdbResult.OK, password, {"user": user})


class PasswdUserdb(UserdbDriver):
    """uid, gid, home and the canonical name from getpwnam(). Extra args other
    than blocking= are field templates (deprecated, as in userdb-passwd.c)."""

    name = "passwd"

    def __init__(self, args: str) -> None:
        self.templates = [(k, v) for k, v in parse_fields(args) if k != "blocking"]

    async def lookup(self, user: str, variables: Mapping[str, str],
                     prefetched: Mapping[str, str]) -> tuple[PassdbResult, dict[str, str]]:
        entry = await run_blocking(_getpwnam, user)
        if entry is None:
            return PassdbResult.USER_UNKNOWN, {}
        fields = {"user": entry.pw_name, "system_groups_user": entry.pw_name,
                  "uid": str(entry.pw_uid), "gid": str(entry.pw_gid), "home": entry.pw_dir}
        try:
            for key, value in self.templates:
                fields[key] = expand(value, variables)
        except ExpansionError:
            return PassdbResult.INTERNAL_FAILURE, {}
        return PassdbResult.OK, fields
