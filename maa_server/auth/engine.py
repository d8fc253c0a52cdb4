"""Running one authentication through the passdb and userdb chains.

The chain decisions are `chain.PassdbChain`'s; this module does the I/O
around them: calls drivers, applies default/override fields, checks the
password (in a thread), `allow_nets`, `nopassword`, `noauthenticate`, and
turns the outcome into an `AuthResult` with a userdb answer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Literal

from maa_server.auth import schemes
from maa_server.auth.chain import DbRules, PassdbChain, PassdbResult, UserdbChain
from maa_server.auth.drivers.base import PassdbLookup
from maa_server.auth.fields import (
    apply_fields,
    expand_fields,
    ip_in_networks,
    mechanisms_match,
    username_filter_matches,
)
from maa_server.auth.interface import AuthResult, AuthStatus, ClientInfo, UserInfo
from maa_server.auth.mail_access import resolve_gid, resolve_uid
from maa_server.auth.settings import AuthSettings, PassdbConfig, UserdbConfig
from maa_server.auth.varexpand import ExpansionError, user_parts
from maa_server.auth.workers import run_blocking
from maa_server.logs import MailLog, get_log

log = get_log("auth")

# Verified when the user is unknown, so that an unknown user costs as much
# time as a wrong password (no user enumeration by timing). Once a real hash
# has been seen, that one is used instead: same scheme, same cost.
DUMMY_HASH = schemes.StoredPassword(
    "BLF-CRYPT", "$2y$05$a1bVHC1qqflksknJulEC6.Kh23StnfScgwzx3W1Sem.u3dufK88WO")


@dataclass(slots=True)
class AuthRequest:
    """One authentication attempt (Dovecot's struct auth_request)."""

    user: str  # the login user (the target for a master login)
    client: ClientInfo
    mech: str = "PLAIN"
    master_user: str = ""
    original_user: str = ""
    password: str | None = None  # plaintext mechanisms only
    credentials: bytes | None = None  # for CRAM-MD5 / SCRAM
    prefetch: dict[str, str] = field(default_factory=dict)  # userdb_* fields
    verified_any_password: bool = False  # did we spend a hash verification?
    in_master_passdb: bool = False  # log lines get the `master` tag
    passdb_fields: dict[str, str] = field(default_factory=dict)  # for %{passdb:name}

    def variables(self, lookup_name: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        name = self.user if lookup_name is None else lookup_name
        c = self.client
        out = user_parts(name)
        out.update({
            "service": c.protocol, "lip": c.local_ip, "rip": c.remote_ip,
            "lport": str(c.local_port or ""), "rport": str(c.remote_port or ""),
            "mech": self.mech, "secured": "TLS" if c.secured else "", "session": c.session_id,
            "cert": "valid" if c.cert_username else "", "local_name": c.local_name,
            "master_user": self.master_user, "real_lip": c.local_ip, "real_rip": c.remote_ip,
            "password": self.password or "", "pid": str(os.getpid()),
        })
        orig = user_parts(self.original_user or name)
        out.update({"orig_user": orig["user"], "orig_username": orig["username"],
                    "orig_domain": orig["domain"]})
        login = user_parts(self.user)
        out.update({"login_user": login["user"], "login_username": login["username"],
                    "login_domain": login["domain"]})
        auth = user_parts(self.master_user or self.user)
        out.update({"auth_user": auth["user"], "auth_username": auth["username"],
                    "auth_domain": auth["domain"]})
        out.update({f"passdb:{k}": v for k, v in self.passdb_fields.items()})
        if extra:
            out.update(extra)
        return out


Mode = Literal["plain", "credentials", "lookup"]


def _rename(req: AuthRequest, fields: dict[str, str]) -> None:
    """`user` replaces the login name (fixing case or domain); `username` /
    `domain` replace one part (auth-request-fields.c)."""
    if fields.get("user"):
        req.user = fields["user"]
        return
    name, at, domain = req.user.partition("@")
    if fields.get("username"):
        name = fields["username"]
        req.user = f"{name}@{domain}" if at else name
    if "domain" in fields:
        req.user = f"{name}@{fields['domain']}" if fields["domain"] else name


class AuthEngine:
    def __init__(self, settings: AuthSettings, passdbs: list[PassdbConfig],
                 masters: list[PassdbConfig], userdbs: list[UserdbConfig]) -> None:
        self.settings = settings
        self.passdbs = passdbs
        self.masters = masters
        self.userdbs = userdbs
        self.timing_hash: schemes.StoredPassword | None = None
        # Dovecot numbers the requests an auth worker serves: auth-worker<N>
        self.worker_requests = 0

    # -- logging --------------------------------------------------------------

    def log_prefix(self, name: str, user: str, req: AuthRequest) -> str:
        parts = [user]
        if req.client.remote_ip:
            parts.append(req.client.remote_ip)
        if req.in_master_passdb:
            parts.append("master")
        if req.client.session_id:
            parts.append(f"<{req.client.session_id}>")
        return f"{name}({','.join(parts)})"

    def verbose_on(self, pdb: PassdbConfig | None) -> bool:
        on = self.settings.verbose if pdb is None or pdb.verbose is None else pdb.verbose
        return on or self.settings.debug

    def _log_for(self, pdb: PassdbConfig | None) -> tuple[MailLog, str]:
        """Blocking drivers (PAM, passwd, shadow) log as Dovecot's auth worker."""
        if pdb is not None and pdb.driver.worker:
            pid = os.getpid()
            return (get_log(f"auth-worker({pid})"),
                    f"conn unix:auth-worker (pid={pid},uid={os.getuid()}): auth-worker<{self.worker_requests}>: ")
        return log, ""

    def verbose(self, pdb: PassdbConfig | None, user: str, req: AuthRequest, text: str) -> None:
        if self.verbose_on(pdb):
            target, head = self._log_for(pdb)
            target.info(f"{head}{self.log_prefix(pdb.name if pdb else 'auth', user, req)}: {text}")

    def debug(self, name: str, user: str, req: AuthRequest, text: str) -> None:
        if self.settings.debug:
            log.debug(f"{self.log_prefix(name, user, req)}: {text}")

    def db_error(self, pdb: PassdbConfig, user: str, req: AuthRequest, text: str) -> None:
        target, head = self._log_for(pdb)
        target.error(f"{head}{self.log_prefix(pdb.name, user, req)}: {text}")

    def _mismatch_text(self, password: str) -> str:
        mode = self.settings.verbose_passwords.lower()
        mode, _, trunc = mode.partition(":")
        if mode in ("plain", "yes"):
            shown = password
        elif mode == "sha1":
            import hashlib
            shown = hashlib.sha1(password.encode("utf-8", "surrogateescape")).hexdigest()
        else:
            return "Password mismatch"
        if trunc.isdigit():
            shown = shown[:int(trunc)]
        label = "SHA1 of given password" if mode == "sha1" else "given password"
        return f"Password mismatch ({label}: {shown})"

    # -- one passdb --------------------------------------------------------------

    async def _run_passdb(self, pdb: PassdbConfig, lookup_name: str, req: AuthRequest, mode: Mode,
                          wanted_scheme: str, password_verified: bool
                          ) -> tuple[PassdbResult, dict[str, str], bool]:
        """(result, extra fields, failed_inside)."""
        variables = req.variables(lookup_name)
        if pdb.driver.worker:
            self.worker_requests += 1
        if not pdb.driver.can_lookup:
            if mode == "plain" and req.password is not None:
                look = await pdb.driver.verify_plain(lookup_name, req.password, variables)
                req.verified_any_password = True
            else:
                look = PassdbLookup(PassdbResult.SCHEME_NOT_AVAILABLE)
            if look.result is PassdbResult.INTERNAL_FAILURE:
                self.db_error(pdb, lookup_name, req, look.error or "internal failure")
            elif look.result is not PassdbResult.OK:
                self.verbose(pdb, lookup_name, req, look.error or look.result.value)
            return look.result, dict(look.fields), False
        look = await pdb.driver.lookup(lookup_name, variables)
        if look.debug:
            self.debug(pdb.name, lookup_name, req, look.debug)
        if look.result is not PassdbResult.OK:
            if look.result is PassdbResult.INTERNAL_FAILURE:
                self.db_error(pdb, lookup_name, req, f"{look.error}")
            else:
                self.verbose(pdb, lookup_name, req, look.error or look.result.value)
            return look.result, {}, False
        fields: dict[str, str] = {}
        try:
            apply_fields(fields, expand_fields(pdb.default_fields, variables))
            apply_fields(fields, look.fields)
            apply_fields(fields, expand_fields(pdb.override_fields, variables))
        except ExpansionError as exc:
            self.db_error(pdb, lookup_name, req, f"{exc}")
            return PassdbResult.INTERNAL_FAILURE, {}, False
        stored = fields.pop("password", None)
        if stored is None:
            stored = look.password or ""
        elif look.password is None:
            look.password = stored  # the password came from default/override_fields
        noscheme = fields.pop("password_noscheme", None)
        failed_inside = "fail" in fields
        allow_nets = fields.get("allow_nets")
        if allow_nets is not None and not ip_in_networks(req.client.remote_ip, allow_nets):
            self.verbose(pdb, lookup_name, req,
                         f"allow_nets check failed: IP {req.client.remote_ip or '(local)'} "
                         "not in allowed networks")
            failed_inside = True
        if look.userdb_fields:
            req.prefetch.update(look.userdb_fields)
        if "nopassword" in fields and (noscheme or schemes.parse_stored(stored).value):
            # auth-request-fields.c: only an empty password may be waived
            self.db_error(pdb, lookup_name, req, "nopassword set but password is non-empty")
            del fields["nopassword"]
        if "noauthenticate" in fields:
            return PassdbResult.NEXT, fields, failed_inside
        if password_verified or mode == "lookup":
            return PassdbResult.OK, fields, failed_inside
        if mode == "credentials":
            if "nopassword" in fields or not (stored or noscheme):
                return PassdbResult.SCHEME_NOT_AVAILABLE, {}, failed_inside
            try:
                parsed = schemes.StoredPassword("PLAIN", noscheme) if noscheme is not None \
                    else schemes.parse_stored(stored, pdb.driver.default_scheme)
                creds = schemes.credentials(parsed, wanted_scheme, lookup_name)
            except (schemes.UnknownScheme, schemes.SchemeError) as exc:
                self.db_error(pdb, lookup_name, req, f"{exc}")
                return PassdbResult.INTERNAL_FAILURE, {}, failed_inside
            if creds is None:
                self.verbose(pdb, lookup_name, req,
                             f"Requested {wanted_scheme} scheme, but we have only {parsed.base_scheme}")
                return PassdbResult.SCHEME_NOT_AVAILABLE, {}, failed_inside
            req.credentials = creds
            return PassdbResult.OK, fields, failed_inside
        # plaintext verification
        if "nopassword" in fields:
            return PassdbResult.OK, fields, failed_inside
        if not (stored or noscheme):
            # An empty password field simply does not match (passwd-file);
            # no password at all is the static/sql message.
            text = "Password mismatch" if look.password == "" else "No password returned (and no nopassword)"
            self.verbose(pdb, lookup_name, req, text)
            return PassdbResult.PASSWORD_MISMATCH, {}, failed_inside
        try:
            parsed = schemes.StoredPassword("PLAIN", noscheme) if noscheme is not None \
                else schemes.parse_stored(stored, pdb.driver.default_scheme)
            req.verified_any_password = True
            ok = await run_blocking(schemes.verify, parsed, req.password or "", lookup_name)
            self.timing_hash = parsed
        except schemes.UnknownScheme:
            # passdb-passwd-file.c: a failed verification is a mismatch, with an error logged
            self.db_error(pdb, lookup_name, req, f"Unknown scheme "
                      f"{parsed.base_scheme}")
            return PassdbResult.PASSWORD_MISMATCH, {}, failed_inside
        except schemes.SchemeError as exc:
            self.db_error(pdb, lookup_name, req, f"Password data is not valid "
                      f"for scheme {parsed.base_scheme}: {exc}")
            return PassdbResult.PASSWORD_MISMATCH, {}, failed_inside
        if not ok:
            self.verbose(pdb, lookup_name, req, self._mismatch_text(req.password or ""))
            return PassdbResult.PASSWORD_MISMATCH, {}, failed_inside
        return PassdbResult.OK, fields, failed_inside

    # -- the chain ------------------------------------------------------------------

    def _rules_for(self, pdb: PassdbConfig, name: str, req: AuthRequest, mode: Mode) -> DbRules:
        mech = "" if mode == "lookup" else req.mech
        applicable = mechanisms_match(pdb.mechanisms, mech) and \
            (not pdb.username_filter or username_filter_matches(pdb.username_filter, name))
        return replace(pdb.rules, applicable=applicable)

    async def run_passdbs(self, req: AuthRequest, mode: Mode, wanted_scheme: str = ""
                          ) -> tuple[PassdbChain, dict[str, str]]:
        """Evaluate the chain; returns it (finished) and the kept fields."""
        chain = PassdbChain([self._rules_for(p, req.user, req, mode) for p in self.passdbs],
                            [self._rules_for(m, req.master_user, req, mode) for m in self.masters],
                            master_login=bool(req.master_user))
        while chain.position is not None:
            kind, index = chain.position
            if kind == "master":
                pdb, name = self.masters[index], req.master_user
            else:
                pdb, name = self.passdbs[index], req.user
            verified = chain.state.password_verified
            # A deny passdb only needs to know whether the user is listed.
            pdb_mode: Mode = "lookup" if pdb.rules.deny else mode
            req.in_master_passdb = kind == "master"
            self.debug(pdb.name, name, req, "Performing passdb lookup")
            result, fields, failed_inside = await self._run_passdb(
                pdb, name, req, pdb_mode, wanted_scheme, verified)
            self.debug(pdb.name, name, req, "Finished passdb lookup")
            req.in_master_passdb = False
            found = result not in (PassdbResult.USER_UNKNOWN, PassdbResult.INTERNAL_FAILURE)
            if pdb.rules.deny and found and self.verbose_on(pdb):
                log.info("User found from deny passdb")  # Dovecot logs it without a prefix
            if kind == "master" and result is PassdbResult.OK and not failed_inside:
                log.info(f"Master user logging in as {req.user}")
            # nopassword / noauthenticate concern one passdb only (auth-request.c)
            fields.pop("nopassword", None)
            fields.pop("noauthenticate", None)
            if kind == "normal" and result is PassdbResult.OK:
                _rename(req, fields)
            chain.feed(result, fields, failed_inside)
        req.passdb_fields = dict(chain.state.fields)
        self.debug("auth", req.user, req, "Auth request finished")
        for line in chain.state.log:
            if line.startswith(("Last passdb", "All password")):
                log.error(f"{self.log_prefix('auth', req.user, req)}: {line}")
        return chain, chain.state.fields

    # -- userdb ------------------------------------------------------------------------

    async def run_userdbs(self, req: AuthRequest) -> tuple[PassdbResult, dict[str, str]]:
        if not self.userdbs:
            # No userdb configured: Dovecot acts as if `static` with no fields.
            return PassdbResult.OK, dict(req.prefetch)
        chain = UserdbChain([u.rules for u in self.userdbs])
        while chain.index is not None:
            udb = self.userdbs[chain.index]
            variables = req.variables()
            self.debug(udb.name, req.user, req, "Performing userdb lookup")
            result, fields = await udb.driver.lookup(req.user, variables, req.prefetch)
            self.debug(udb.name, req.user, req, "Finished userdb lookup")
            if result is PassdbResult.OK:
                merged: dict[str, str] = {}
                try:
                    apply_fields(merged, expand_fields(udb.default_fields, variables))
                    apply_fields(merged, fields)
                    apply_fields(merged, expand_fields(udb.override_fields, variables))
                except ExpansionError as exc:
                    log.error(f"{self.log_prefix(udb.name, req.user, req)}: {exc}")
                    result, merged = PassdbResult.INTERNAL_FAILURE, {}
                fields = merged
            elif result is PassdbResult.USER_UNKNOWN:
                self.verbose(None, req.user, req, f"userdb {udb.name}: unknown user")
            chain.feed(result, fields)
        final = chain.state.final or PassdbResult.USER_UNKNOWN
        return final, chain.state.fields

    def user_info(self, req: AuthRequest, fields: dict[str, str]) -> UserInfo | str:
        """UserInfo from userdb fields, or an error text (a uid/gid name that does not exist)."""
        fields = dict(fields)
        username = fields.pop("user", req.user) or req.user
        info = UserInfo(username=username)
        for kind, resolve in (("uid", resolve_uid), ("gid", resolve_gid)):
            value = fields.pop(kind, "")
            if not value:
                continue
            number = resolve(value)
            if number is None:
                # userdb.c userdb_parse_uid/gid: the lookup tempfails. The
                # first_valid_uid range is not checked here: as in Dovecot the
                # mail process refuses such a user after the login.
                return f"Invalid {kind.upper()} value '{value}'"
            setattr(info, kind, number)
        info.home = fields.pop("home", "")
        info.mail = fields.pop("mail", "")
        info.extra = fields
        return info

    async def finish(self, req: AuthRequest, chain: PassdbChain, fields: dict[str, str]) -> AuthResult:
        """AuthResult for a finished chain, with the userdb lookup on success."""
        final = chain.state.final
        if final is not PassdbResult.OK:
            if chain.state.master_accepted:
                return AuthResult(AuthStatus.FAIL, username=req.user, master_user=req.master_user,
                                  reason="Authorization failed", log_reason="authorization failed")
            if final is PassdbResult.INTERNAL_FAILURE:
                return AuthResult(AuthStatus.TEMPFAIL, username=req.user, log_reason="internal failure")
            if final is PassdbResult.PASS_EXPIRED:
                return AuthResult(AuthStatus.FAIL, username=req.user, reason="Password expired",
                                  log_reason="password expired")
            return AuthResult(AuthStatus.FAIL, username=req.user, log_reason=final.value if final else "")
        if "nologin" in fields and "proxy" not in fields and "host" not in fields:
            return AuthResult(AuthStatus.NOLOGIN, username=req.user, master_user=req.master_user,
                              reason=fields.get("reason") or "Login disabled for this user",
                              log_reason="nologin")
        result, ufields = await self.run_userdbs(req)
        if result is PassdbResult.INTERNAL_FAILURE:
            return AuthResult(AuthStatus.TEMPFAIL, username=req.user, log_reason="userdb internal failure")
        if result is not PassdbResult.OK:
            log.error(f"{self.log_prefix('userdb', req.user, req)}: user not found from any userdbs")
            return AuthResult(AuthStatus.FAIL, username=req.user, log_reason="user not found from userdb")
        info = self.user_info(req, ufields)
        if isinstance(info, str):
            log.error(f"{self.log_prefix('userdb', req.user, req)}: {info}")
            return AuthResult(AuthStatus.TEMPFAIL, username=req.user, log_reason=info)
        info.extra.update({k: v for k, v in fields.items() if k in ("proxy", "host", "port", "destuser")})
        return AuthResult(AuthStatus.OK, username=info.username, user=info, master_user=req.master_user)

    async def equalise_timing(self, req: AuthRequest) -> None:
        """An unknown user must cost what a wrong password costs."""
        if not req.verified_any_password and req.password is not None:
            stored = self.timing_hash or DUMMY_HASH
            try:
                await run_blocking(schemes.verify, stored, req.password, req.user)
            except (schemes.UnknownScheme, schemes.SchemeError):
                pass  # only the time spent matters here
