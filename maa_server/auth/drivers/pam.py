"""PAM passdb (passdb-pam.c): through the optional `python-pam` package when
installed, else through our own libpam binding (pam_native).

PAM can only verify a plaintext password; it runs in a thread (PAM modules
block and may sleep on failure). `args = [session=yes] [setcred=yes]
[failure_show_msg=yes] [max_requests=<n>] [cache_key=<key>] [*] [<service>]`;
`*` means the protocol name is the PAM service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maa_server.auth.chain import PassdbResult
from maa_server.auth.drivers import pam_native
from maa_server.auth.drivers.base import PassdbDriver, PassdbLookup
from maa_server.auth.workers import run_blocking

# PAM return codes (security/_pam_types.h)
PAM_SUCCESS = 0
PAM_USER_UNKNOWN = 10
PAM_AUTH_ERR = 7
PAM_NEW_AUTHTOK_REQD = 12
PAM_ACCT_EXPIRED = 13


def _load_pam() -> Any:
    try:
        import pam  # type: ignore[import-not-found]
    except ImportError:
        return None
    return pam


class PamPassdb(PassdbDriver):
    name = "pam"
    default_scheme = ""
    can_lookup = False
    worker = True

    def __init__(self, args: str) -> None:
        self.service = "dovecot"
        self.session = False
        for word in args.split():
            if word == "*":
                self.service = "*"
            elif "=" in word:
                key, _, value = word.partition("=")
                if key == "session":
                    self.session = value.lower() in ("yes", "y", "1")
                # setcred, failure_show_msg, max_requests, cache_key: accepted
            else:
                self.service = word

    async def lookup(self, user: str, variables: Mapping[str, str]) -> PassdbLookup:
        # passdb_pam has no lookup_credentials: only plaintext mechanisms work.
        return PassdbLookup(PassdbResult.SCHEME_NOT_AVAILABLE,
                            error="pam: credentials lookup not supported")

    def _authenticate(self, user: str, password: str, service: str, rhost: str) -> tuple[int, str]:
        module = _load_pam()
        if module is None:
            # No python-pam: talk to libpam directly.
            code, reason = pam_native.authenticate(user, password, service, rhost)
            if code == -1:
                return -1, "PAM is not available: python-pam is not installed and libpam.so.0 is missing"
            return code, reason
        handle = module.pam()
        ok = handle.authenticate(user, password, service=service, resetcreds=False)
        if ok:
            return PAM_SUCCESS, ""
        return int(handle.code), str(handle.reason)

    async def verify_plain(self, user: str, password: str,
                           variables: Mapping[str, str]) -> PassdbLookup:
        service = variables.get("service", "imap") if self.service == "*" else self.service
        code, reason = await run_blocking(self._authenticate, user, password, service,
                                          variables.get("rip", ""))
        if code == -1:
            return PassdbLookup(PassdbResult.INTERNAL_FAILURE, error=reason)
        if code == PAM_SUCCESS:
            return PassdbLookup(PassdbResult.OK, None, {"user": user})
        if code == PAM_USER_UNKNOWN:
            return PassdbLookup(PassdbResult.USER_UNKNOWN, error="unknown user")
        if code == PAM_NEW_AUTHTOK_REQD or code == PAM_ACCT_EXPIRED:
            return PassdbLookup(PassdbResult.PASS_EXPIRED, error=f"pam_authenticate() failed: {reason}")
        if code == PAM_AUTH_ERR:
            return PassdbLookup(PassdbResult.PASSWORD_MISMATCH,
                                error=f"pam_authenticate() failed: {reason} (Password mismatch?)")
        return PassdbLookup(PassdbResult.INTERNAL_FAILURE,
                            error=f"pam_authenticate() failed: {reason} (/etc/pam.d/{service} missing?)")
