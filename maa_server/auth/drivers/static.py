"""static passdb and userdb, and the prefetch userdb (passdb-static.c,
userdb-static.c, userdb-prefetch.c)."""

from __future__ import annotations

from collections.abc import Mapping

from maa_server.auth.chain import PassdbResult
from maa_server.auth.drivers.base import PassdbDriver, PassdbLookup, UserdbDriver
from maa_server.auth.fields import parse_fields
from maa_server.auth.varexpand import ExpansionError, expand


class StaticPassdb(PassdbDriver):
    """`args = password=<pw>` (PLAIN unless prefixed) or `nopassword`, plus fields."""

    name = "static"
    default_scheme = "PLAIN"

    def __init__(self, args: str) -> None:
        self.template = parse_fields(args)

    async def lookup(self, user: str, variables: Mapping[str, str]) -> PassdbLookup:
        fields: dict[str, str] = {}
        userdb: dict[str, str] = {}
        try:
            for key, value in self.template:
                expanded = expand(value, variables)
                if key.startswith("userdb_"):
                    userdb[key[7:]] = expanded
                else:
                    fields[key] = expanded
        except ExpansionError as exc:
            return PassdbLookup(PassdbResult.INTERNAL_FAILURE, error=f"static: {exc}")
        password = fields.pop("password", None)
        if password is None and "nopassword" in fields:
            password = ""
        # passdb-static.c: no password and no nopassword is a mismatch
        # ("No password returned (and no nopassword)"), logged by the engine.
        return PassdbLookup(PassdbResult.OK, password, fields, userdb)


class StaticUserdb(UserdbDriver):
    """`args = uid=vmail gid=vmail home=/home/%u [allow_all_users=yes]`."""

    name = "static"

    def __init__(self, args: str) -> None:
        pairs = parse_fields(args)
        self.allow_all_users = any(k == "allow_all_users" and v.lower() in ("yes", "y", "1", "")
                                   for k, v in pairs)
        self.template = [(k, v) for k, v in pairs if k != "allow_all_users"]

    async def lookup(self, user: str, variables: Mapping[str, str],
                     prefetched: Mapping[str, str]) -> tuple[PassdbResult, dict[str, str]]:
        try:
            return PassdbResult.OK, {k: expand(v, variables) for k, v in self.template}
        except ExpansionError:
            return PassdbResult.INTERNAL_FAILURE, {}


class PrefetchUserdb(UserdbDriver):
    """The `userdb_*` fields the passdb returned; unknown if there were none."""

    name = "prefetch"

    def __init__(self, args: str) -> None:
        self.args = args

    async def lookup(self, user: str, variables: Mapping[str, str],
                     prefetched: Mapping[str, str]) -> tuple[PassdbResult, dict[str, str]]:
        if not prefetched:
            return PassdbResult.USER_UNKNOWN, {}
        return PassdbResult.OK, dict(prefetched)
