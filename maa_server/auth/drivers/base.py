"""What a passdb / userdb driver provides to the authenticator."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field

from maa_server.auth.chain import PassdbResult


class DriverError(Exception):
    """Bad driver configuration (Dovecot makes these fatal at startup)."""


@dataclass(slots=True)
class PassdbLookup:
    """A passdb's answer for one user: found or not, the stored password
    (with or without `{SCHEME}`), and its extra fields."""

    result: PassdbResult  # OK (found), USER_UNKNOWN, INTERNAL_FAILURE, PASSWORD_MISMATCH (pam)
    password: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    # userdb_* fields for a later prefetch userdb, prefix stripped
    userdb_fields: dict[str, str] = field(default_factory=dict)
    error: str = ""  # log text for auth_verbose / errors
    debug: str = ""  # what was looked up where, for auth_debug


class PassdbDriver(abc.ABC):
    name: str = ""
    default_scheme: str = "CRYPT"
    # False for PAM: it can only verify a plaintext password, never look one up.
    can_lookup: bool = True
    # Dovecot runs it in an auth worker process (log prefix `auth-worker(<pid>)`).
    worker: bool = False

    @abc.abstractmethod
    async def lookup(self, user: str, variables: Mapping[str, str]) -> PassdbLookup:
        """Find `user`; `variables` are the request's %-variables."""

    async def verify_plain(self, user: str, password: str,
                           variables: Mapping[str, str]) -> PassdbLookup:
        """Only drivers that verify by themselves (PAM) override this."""
        return PassdbLookup(PassdbResult.INTERNAL_FAILURE, error=f"{self.name}: cannot verify passwords")


class UserdbDriver(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    async def lookup(self, user: str, variables: Mapping[str, str],
                     prefetched: Mapping[str, str]) -> tuple[PassdbResult, dict[str, str]]:
        """(OK / USER_UNKNOWN / INTERNAL_FAILURE, userdb fields)."""
