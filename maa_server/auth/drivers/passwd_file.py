"""passwd-file passdb and userdb (src/auth/db-passwd-file.c).

`user:password:uid:gid:gecos:home:shell:extra_fields`, re-read whenever the
file's mtime, size or inode changes; the path may contain %-variables (one
file per domain). Reading and parsing run in a thread.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import stat
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

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
from maa_server.logs import get_log

log = get_log("auth")


@dataclass(slots=True)
class PasswdEntry:
    user: str
    password: str | None  # None: the line had no password field
    uid: int | None = None
    gid: int | None = None
    home: str = ""
    has_userdb: bool = False  # at least uid and gid columns present
    extra: list[tuple[str, str]] = field(default_factory=list)
    mail: str = ""  # old format: the rest after an empty 8th field


def _id(value: str, kind: str, user: str, path: str, lineno: int) -> int | None:
    if not value:
        return None
    if value.isdigit():
        number = int(value)
    else:
        try:
            number = pwd.getpwnam(value).pw_uid if kind == "UID" else grp.getgrnam(value).gr_gid
        except KeyError:
            number = 0
    if number == 0:
        raise ValueError(f"{path}:{lineno}: User {user} has invalid {kind} '{value}'")
    return number


# libpam-pwdfile's `hash[13]` style: the suffix names the scheme.
_PWDFILE_SUFFIX = {"13": "CRYPT", "34": "PLAIN-MD5", "56": "DIGEST-MD5"}


def parse_line(line: str, path: str = "", lineno: int = 0) -> PasswdEntry | None:
    """One line; None for empty, `#` comments and lines starting with `:`."""
    line = line.rstrip("\r\n")
    if not line or line.startswith(("#", ":")):
        return None
    parts = line.split(":")
    user = parts[0]
    password: str | None = parts[1] if len(parts) > 1 else None
    if password and password.endswith("]") and "[" in password:
        head, _, tail = password[:-1].rpartition("[")
        if tail in _PWDFILE_SUFFIX and not head.startswith("{"):
            password = "{" + _PWDFILE_SUFFIX[tail] + "}" + head
    entry = PasswdEntry(user, password)
    if len(parts) >= 4:
        entry.has_userdb = True
        entry.uid = _id(parts[2], "UID", user, path, lineno)
        entry.gid = _id(parts[3], "GID", user, path, lineno)
    if len(parts) > 5:
        entry.home = parts[5]
    if len(parts) > 7:
        if parts[7] == "":
            # Old format: an empty 8th field, then the mail location.
            if len(parts) > 8 and parts[8] != "":
                entry.mail = ":".join(parts[8:])
        else:
            # New format: space separated extra fields (colons rejoined).
            entry.extra = parse_fields(":".join(parts[7:]))
    return entry


@dataclass(slots=True)
class _Loaded:
    stamp: tuple[int, int, int, int]
    users: dict[str, PasswdEntry]


def load_file(path: str) -> dict[str, PasswdEntry]:
    started = time.monotonic()
    users: dict[str, PasswdEntry] = {}
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                entry = parse_line(line, path, lineno)
            except ValueError as exc:
                log.error(f"passwd-file {exc}")
                continue
            if entry is None:
                continue
            if entry.user in users:
                log.error(f"passwd-file {path}: User {entry.user} exists more than once")
                continue
            users[entry.user] = entry
    # sic: no space after the colon, as db-passwd-file.c writes it
    log.debug(f"passwd-file {path}:Read {len(users)} users in {int(time.monotonic() - started)} secs")
    return users


class PasswdFileCache:
    """Parsed files by path, re-read when the file changes on disk."""

    def __init__(self) -> None:
        self._files: dict[str, _Loaded] = {}
        # One lock per event loop: the cache is process-wide, and an
        # asyncio.Lock that ever waited is bound to its loop (the test
        # harnesses and helper threads run servers in loops of their own).
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = \
            weakref.WeakKeyDictionary()

    def _read(self, path: str) -> _Loaded | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
        cached = self._files.get(path)
        if cached is not None and cached.stamp == stamp:
            return cached
        if stat.S_ISDIR(st.st_mode):
            # Dovecot reads a directory as an empty file: every user is unknown.
            loaded = _Loaded(stamp, {})
            self._files[path] = loaded
            return loaded
        loaded = _Loaded(stamp, load_file(path))
        self._files[path] = loaded
        return loaded

    async def get(self, path: str) -> _Loaded | None:
        """Raises OSError when the file exists but cannot be read."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        async with lock:
            return await run_blocking(self._read, path)


_CACHE = PasswdFileCache()


def _parse_args(args: str, allowed: tuple[str, ...], kind: str) -> tuple[dict[str, str], str]:
    options: dict[str, str] = {}
    words = args.split()
    path = ""
    for i, word in enumerate(words):
        key, eq, value = word.partition("=")
        if eq and key in allowed:
            options[key] = value
            continue
        if eq and "/" not in key and key.isidentifier():
            raise DriverError(f"{kind} passwd-file: Unknown setting: {word}")
        path = " ".join(words[i:])
        break
    if not path:
        raise DriverError(f"{kind} passwd-file: Missing args")
    return options, path


class _PasswdFileBase:
    def __init__(self, args: str, allowed: tuple[str, ...], kind: str) -> None:
        options, self.path_template = _parse_args(args, allowed, kind)
        self.username_format = options.get("username_format", "%u")
        self.options = options

    last_debug = ""

    async def find(self, user: str, variables: Mapping[str, str]) -> tuple[PassdbResult, PasswdEntry | None, str]:
        try:
            path = expand(self.path_template, variables)
            # `variables` describe the name being looked up (the master
            # user's own name in a master passdb)
            key = expand(self.username_format, variables)
        except ExpansionError as exc:
            return PassdbResult.INTERNAL_FAILURE, None, f"passwd-file: {exc}"
        self.last_debug = f"lookup: user={key} file={path}"
        try:
            loaded = await _CACHE.get(path)
        except OSError as exc:
            return PassdbResult.INTERNAL_FAILURE, None, f"passwd-file {path}: open() failed: {exc.strerror}"
        if loaded is None:
            # A missing per-domain file means "no such user" (db-passwd-file.c
            # logs it only with auth_debug).
            return PassdbResult.USER_UNKNOWN, None, "unknown user"
        entry = loaded.users.get(key)
        if entry is None:
            return PassdbResult.USER_UNKNOWN, None, "unknown user"
        return PassdbResult.OK, entry, ""


class PasswdFilePassdb(_PasswdFileBase, PassdbDriver):
    name = "passwd-file"

    def __init__(self, args: str) -> None:
        _PasswdFileBase.__init__(self, args, ("scheme", "username_format"), "passdb")
        self.default_scheme = self.options.get("scheme", "CRYPT").upper()

    async def lookup(self, user: str, variables: Mapping[str, str]) -> PassdbLookup:
        result, entry, error = await self.find(user, variables)
        if entry is None:
            return PassdbLookup(result, error=error, debug=self.last_debug)
        fields: dict[str, str] = {}
        userdb: dict[str, str] = {}
        for key, value in entry.extra:
            try:
                value = expand(value, variables)
            except ExpansionError as exc:
                return PassdbLookup(PassdbResult.INTERNAL_FAILURE, error=f"passwd-file: {exc}")
            if key.startswith("userdb_"):
                userdb[key[7:]] = value
            else:
                fields[key] = value
        # Only explicit userdb_* fields go to a prefetch userdb; the uid/gid/home
        # columns are the passwd-file *userdb*'s (doveadm auth test shows this).
        return PassdbLookup(PassdbResult.OK, entry.password or "", fields, userdb, debug=self.last_debug)


class PasswdFileUserdb(_PasswdFileBase, UserdbDriver):
    name = "passwd-file"

    def __init__(self, args: str) -> None:
        _PasswdFileBase.__init__(self, args, ("username_format",), "userdb")

    async def lookup(self, user: str, variables: Mapping[str, str],
                     prefetched: Mapping[str, str]) -> tuple[PassdbResult, dict[str, str]]:
        result, entry, _error = await self.find(user, variables)
        if entry is None:
            return result, {}
        if not entry.has_userdb:
            return PassdbResult.USER_UNKNOWN, {}  # "no userdb info" on this line
        fields: dict[str, str] = {}
        if entry.uid is not None:
            fields["uid"] = str(entry.uid)
        if entry.gid is not None:
            fields["gid"] = str(entry.gid)
        if entry.home:
            fields["home"] = entry.home
        if entry.mail:
            fields["mail"] = entry.mail
        for key, value in entry.extra:
            if key.startswith("userdb_"):
                try:
                    fields[key[7:]] = expand(value, variables)
                except ExpansionError:
                    return PassdbResult.INTERNAL_FAILURE, {}
        return PassdbResult.OK, fields
