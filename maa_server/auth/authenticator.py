"""The `Authenticator` the protocol layers hold (maa_server.auth.interface).

Wraps the engine with what happens around a login: name normalisation,
the plaintext policy (disable_plaintext_auth), the per-IP penalty, the
failure delay, and the constant-cost answer for unknown users.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from maa_server.auth.chain import PassdbResult
from maa_server.auth.engine import AuthEngine, AuthRequest
from maa_server.auth.fields import ip_in_networks
from maa_server.auth.interface import (
    Authenticator,
    AuthResult,
    AuthStatus,
    ClientInfo,
    SaslExchange,
    UserInfo,
)
from maa_server.auth.penalty import AuthPenalty
from maa_server.auth.settings import AuthSettings
from maa_server.auth.username import UsernameError, normalise_login
from maa_server.logs import get_log

log = get_log("auth")

# What we can run; anything else in auth_mechanisms is not advertised.
SUPPORTED_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "EXTERNAL")
PLAINTEXT_MECHANISMS = ("PLAIN", "LOGIN")
# Usable when configured but never advertised (MECH_SEC_PRIVATE in Dovecot).
PRIVATE_MECHANISMS = ("APOP",)


class AuthLookupError(OSError):
    """A userdb lookup failed internally (LMTP answers 451, not 550)."""


class MaaAuthenticator(Authenticator):
    def __init__(self, engine: AuthEngine, cfg: Any = None) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.penalty = AuthPenalty(self.settings.failure_delay)
        self.cfg = cfg
        self._filtered: dict[tuple[str, str, str, str], AuthSettings] = {}

    def settings_for(self, client: ClientInfo) -> AuthSettings:
        """Settings with `protocol` / `local` / `remote` / `local_name` filters
        applied: admins put disable_plaintext_auth, auth_mechanisms and
        login_trusted_networks in such blocks (spec 1.7)."""
        if self.cfg is None or not hasattr(self.cfg, "settings"):
            return self.settings
        key = (client.protocol, client.local_ip, client.remote_ip, client.local_name)
        cached = self._filtered.get(key)
        if cached is None:
            view = _FilteredConfig(self.cfg, client)
            cached = AuthSettings.from_config(view)
            if len(self._filtered) > 4096:
                self._filtered.clear()
            self._filtered[key] = cached
        return cached

    # -- policy ----------------------------------------------------------------

    def is_trusted(self, client: ClientInfo) -> bool:
        networks = self.settings_for(client).login_trusted_networks
        return bool(networks) and ip_in_networks(client.remote_ip, networks)

    def is_secured(self, client: ClientInfo) -> bool:
        """TLS, a client on our own IP, or a trusted network. Dovecot's
        login-common/client-common.c: `secured = ssl || trusted ||
        net_ip_compare(real_remote_ip, real_local_ip)`; being on loopback is
        not enough (127.0.0.2 -> 127.0.0.1 is not secured, observed)."""
        if client.secured or self.is_trusted(client):
            return True
        return same_ip(client.remote_ip, client.local_ip)

    def plaintext_allowed(self, client: ClientInfo) -> bool:
        return not self.settings_for(client).disable_plaintext_auth or self.is_secured(client)

    def mechanisms(self, client: ClientInfo) -> list[str]:
        out = []
        plaintext_ok = self.plaintext_allowed(client)
        for mech in self.settings_for(client).mechanisms:
            if mech not in SUPPORTED_MECHANISMS:
                continue
            if mech in PLAINTEXT_MECHANISMS and not plaintext_ok:
                continue
            if mech == "EXTERNAL" and not self.settings.ssl_verify_client_cert:
                continue
            out.append(mech)
        return out

    # -- delays --------------------------------------------------------------------

    async def wait_penalty(self, client: ClientInfo) -> None:
        if self.is_trusted(client):
            return
        delay = self.penalty.delay_for(client.remote_ip)
        if delay > 0:
            await asyncio.sleep(delay)

    async def conclude(self, req: AuthRequest, result: AuthResult, fields: dict[str, str],
                       password: str | None) -> AuthResult:
        """Penalty bookkeeping and the failure delay for a finished attempt."""
        ip = req.client.remote_ip
        if result.status is AuthStatus.OK:
            self.penalty.succeeded(ip)
            return result
        if result.status is AuthStatus.FAIL:
            await self.engine.equalise_timing(req)
            if not self.is_trusted(req.client):
                checksum = self.penalty.checksum(req.original_user or req.user, password) \
                    if password is not None else None
                self.penalty.failed(ip, checksum)
        if "nodelay" not in fields and self.settings.failure_delay > 0:
            await asyncio.sleep(self.settings.failure_delay)
        return result

    def new_request(self, username: str, client: ClientInfo, mechanism: str,
                    authzid: str = "") -> AuthRequest | AuthResult:
        try:
            name = normalise_login(username, self.settings, authzid)
        except UsernameError as exc:
            # Logged before there is a user: `plain(?,<rip>,<session>)`.
            if self.engine.verbose_on(None):
                where = [p for p in ("?", client.remote_ip,
                                     f"<{client.session_id}>" if client.session_id else "") if p]
                log.info(f"{(mechanism or 'auth').lower()}({','.join(where)}): {exc}")
            return AuthResult(AuthStatus.FAIL, username=username, log_reason=str(exc))
        if self.settings.ssl_require_client_cert and not client.cert_username and mechanism:
            # auth_ssl_require_client_cert: no valid client certificate, no login
            req = AuthRequest(user=name.user, client=client, mech=mechanism)
            self.engine.verbose(None, name.user, req, "Client didn't present valid SSL certificate")
            return AuthResult(AuthStatus.FAIL, username=name.user,
                              log_reason="no valid client certificate")
        return AuthRequest(user=name.user, client=client, mech=mechanism,
                           master_user=name.master_user, original_user=username)

    # -- Authenticator ---------------------------------------------------------------

    async def verify_plain(self, username: str, password: str, client: ClientInfo,
                           mechanism: str = "PLAIN") -> AuthResult:
        return await self.authenticate_plain(username, password, client, mechanism)

    async def authenticate_plain(self, username: str, password: str, client: ClientInfo,
                                 mechanism: str = "PLAIN", authzid: str = "") -> AuthResult:
        await self.wait_penalty(client)
        req = self.new_request(username, client, mechanism, authzid)
        if isinstance(req, AuthResult):
            dummy = AuthRequest(user=username, client=client, mech=mechanism, password=password)
            return await self.conclude(dummy, req, {}, password)
        req.password = password
        chain, fields = await self.engine.run_passdbs(req, "plain")
        result = await self.engine.finish(req, chain, fields)
        return await self.conclude(req, result, fields, password)

    async def authenticate_credentials(self, req: AuthRequest, scheme: str) -> tuple[bool, dict[str, str], bool]:
        """Credentials lookup for CRAM-MD5/SCRAM: (found, fields, tempfail)."""
        chain, fields = await self.engine.run_passdbs(req, "credentials", scheme)
        final = chain.state.final
        return final is PassdbResult.OK, fields, final is PassdbResult.INTERNAL_FAILURE

    def start_sasl(self, mechanism: str, client: ClientInfo) -> SaslExchange | None:
        from maa_server.auth.sasl import make_exchange

        mech = mechanism.upper()
        allowed = mech in self.mechanisms(client) or \
            (mech in PRIVATE_MECHANISMS and mech in self.settings_for(client).mechanisms)
        if not allowed:
            return None
        return make_exchange(mech, self, client)

    async def lookup_user(self, username: str, client: ClientInfo | None = None) -> UserInfo | None:
        client = client or ClientInfo(protocol="doveadm")
        req = self.new_request(username, client, "")
        if isinstance(req, AuthResult):
            return None
        if req.master_user:
            return None
        if self.needs_passdb_lookup():
            chain, _fields = await self.engine.run_passdbs(req, "lookup")
            if chain.state.final is PassdbResult.INTERNAL_FAILURE:
                raise AuthLookupError(f"passdb lookup failed for {req.user}")
            if chain.state.final is not PassdbResult.OK:
                return None
        result, ufields = await self.engine.run_userdbs(req)
        if result is PassdbResult.INTERNAL_FAILURE:
            raise AuthLookupError(f"userdb lookup failed for {req.user}")
        if result is not PassdbResult.OK:
            return None
        info = self.engine.user_info(req, ufields)
        if isinstance(info, str):
            raise AuthLookupError(info)
        return info

    def needs_passdb_lookup(self) -> bool:
        """static (without allow_all_users) and prefetch userdbs learn about
        the user from the passdbs (userdb-static.c, userdb-prefetch.c)."""
        from maa_server.auth.drivers.static import PrefetchUserdb, StaticUserdb

        if not self.engine.userdbs:
            return True
        for udb in self.engine.userdbs:
            if isinstance(udb.driver, PrefetchUserdb):
                return True
            if isinstance(udb.driver, StaticUserdb) and not udb.driver.allow_all_users:
                return True  # with a PAM-only passdb this fails, as in Dovecot
        return False


def same_ip(remote_ip: str, local_ip: str) -> bool:
    """net_ip_compare() of the two ends: equal addresses (an IPv4-mapped IPv6
    address equals its IPv4 form); two missing ones (a UNIX socket) are equal."""
    if not remote_ip or not local_ip:
        return not remote_ip and not local_ip
    try:
        ips = [ipaddress.ip_address(text.strip().strip("[]")) for text in (remote_ip, local_ip)]
    except ValueError:
        return remote_ip == local_ip
    plain = [ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
             for ip in ips]
    return plain[0] == plain[1]


class _FilteredConfig:
    """`cfg.get(name)` with one client's filters, for AuthSettings.from_config."""

    def __init__(self, cfg: Any, client: ClientInfo) -> None:
        self.cfg = cfg
        self.client = client

    def get(self, name: str) -> Any:
        c = self.client
        return self.cfg.get(name, protocol=c.protocol or None, local_ip=c.local_ip or None,
                            remote_ip=c.remote_ip or None, local_name=c.local_name or None)
