"""Authentication across processes (privilege separation): a login process
runs as an unprivileged user and cannot read shadow, passwd-files or talk
to PAM as root, so it forwards each check to the master, which holds the
real Authenticator (Dovecot: login processes talk to the auth service over
auth-client sockets; src/lib-auth/auth-client-request.c).

`RemoteAuthenticator` is the login side. What needs no secrets (the
mechanism list, whether plaintext is allowed here) is answered by a local
Authenticator built from the same configuration; verify_plain, SASL steps
and userdb lookups are requests. `AuthService` is the master side. The
wire format is JSON (never pickle: the master does not trust the sender);
SASL data travels base64-encoded.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from maa_server.auth.interface import (
    Authenticator,
    AuthResult,
    AuthStatus,
    ClientInfo,
    SaslExchange,
    SaslStep,
    UserInfo,
)

# (request) -> reply; raises when the master cannot be reached.
Call = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
# A SASL exchange the client abandoned is forgotten after this long.
EXCHANGE_TTL_SECS = 600.0


def client_to_dict(client: ClientInfo | None) -> dict[str, Any] | None:
    return None if client is None else dataclasses.asdict(client)


def client_from_dict(data: Any) -> ClientInfo | None:
    if not isinstance(data, dict):
        return None
    names = {f.name for f in dataclasses.fields(ClientInfo)}
    return ClientInfo(**{k: v for k, v in data.items() if k in names})


def user_to_dict(user: UserInfo | None) -> dict[str, Any] | None:
    return None if user is None else dataclasses.asdict(user)


def user_from_dict(data: dict[str, Any]) -> UserInfo:
    return UserInfo(username=str(data.get("username", "")),
                    uid=None if data.get("uid") is None else int(data["uid"]),
                    gid=None if data.get("gid") is None else int(data["gid"]),
                    home=str(data.get("home", "")), mail=str(data.get("mail", "")),
                    extra={str(k): str(v) for k, v in dict(data.get("extra") or {}).items()})


def _user_or_none(data: Any) -> UserInfo | None:
    return user_from_dict(data) if isinstance(data, dict) else None


def result_to_dict(result: AuthResult) -> dict[str, Any]:
    return {"status": result.status.value, "username": result.username,
            "user": user_to_dict(result.user), "master_user": result.master_user,
            "reason": result.reason, "log_reason": result.log_reason}


def result_from_dict(data: dict[str, Any]) -> AuthResult:
    try:
        status = AuthStatus(data.get("status"))
    except ValueError:
        status = AuthStatus.TEMPFAIL
    return AuthResult(status, username=str(data.get("username", "")), user=_user_or_none(data.get("user")),
                      master_user=str(data.get("master_user", "")), reason=str(data.get("reason", "")),
                      log_reason=str(data.get("log_reason", "")))


def _unavailable(username: str, why: str) -> AuthResult:
    return AuthResult(AuthStatus.TEMPFAIL, username=username, log_reason=f"auth service unreachable: {why}")


class RemoteSaslExchange(SaslExchange):
    def __init__(self, call: Call, exchange_id: int, mechanism: str, client: ClientInfo) -> None:
        self.call = call
        self.exchange_id = exchange_id
        self.mechanism = mechanism
        self.client = client
        self.started = False

    async def step(self, response: bytes | None) -> SaslStep:
        request = {"op": "auth-sasl", "exchange": self.exchange_id,
                   "response": None if response is None else base64.b64encode(response).decode()}
        if not self.started:
            request.update(mechanism=self.mechanism, client=client_to_dict(self.client))
            self.started = True
        try:
            reply = await self.call(request)
        except Exception as exc:  # noqa: BLE001 - the master is gone: a temporary failure
            return SaslStep(result=_unavailable("", str(exc)))
        if reply.get("result") is not None:
            return SaslStep(result=result_from_dict(reply["result"]))
        challenge = reply.get("challenge")
        if challenge is None:
            return SaslStep(result=_unavailable("", str(reply.get("error") or "bad reply")))
        return SaslStep(challenge=base64.b64decode(challenge))


class RemoteAuthenticator(Authenticator):
    """The login process's Authenticator (see the module docstring)."""

    def __init__(self, local: Authenticator, call: Call) -> None:
        self.local = local
        self.call = call
        self._ids = itertools.count(1)

    def mechanisms(self, client: ClientInfo) -> list[str]:
        return self.local.mechanisms(client)

    def plaintext_allowed(self, client: ClientInfo) -> bool:
        return self.local.plaintext_allowed(client)

    async def verify_plain(self, username: str, password: str, client: ClientInfo,
                           mechanism: str = "PLAIN") -> AuthResult:
        try:
            reply = await self.call({"op": "auth-plain", "username": username, "password": password,
                                     "client": client_to_dict(client), "mechanism": mechanism})
        except Exception as exc:  # noqa: BLE001 - the master is gone: a temporary failure
            return _unavailable(username, str(exc))
        return result_from_dict(dict(reply.get("result") or {}))

    def start_sasl(self, mechanism: str, client: ClientInfo) -> SaslExchange | None:
        # Known and allowed here? The local engine knows without secrets.
        if self.local.start_sasl(mechanism, client) is None:
            return None
        return RemoteSaslExchange(self.call, next(self._ids), mechanism, client)

    async def lookup_user(self, username: str, client: ClientInfo | None = None) -> UserInfo | None:
        try:
            reply = await self.call({"op": "auth-userdb", "username": username,
                                     "client": client_to_dict(client)})
        except Exception:  # noqa: BLE001 - unreachable: unknown, as a failed lookup
            return None
        return _user_or_none(reply.get("user"))


class AuthService:
    """The master's side for one login process: answers its requests with
    the real Authenticator (which applies failure delays and penalties)."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth
        self.exchanges: dict[int, tuple[float, SaslExchange]] = {}

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        client = client_from_dict(request.get("client")) or ClientInfo(protocol="")
        if op == "auth-plain":
            result = await self.auth.verify_plain(str(request.get("username", "")),
                                                  str(request.get("password", "")), client,
                                                  str(request.get("mechanism") or "PLAIN"))
            return {"result": result_to_dict(result)}
        if op == "auth-userdb":
            user = await self.auth.lookup_user(str(request.get("username", "")), client)
            return {"user": user_to_dict(user)}
        if op == "auth-sasl":
            return await self._sasl(request, client)
        return {"error": f"unknown request {op!r}"}

    async def _sasl(self, request: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
        now = time.monotonic()
        for key in [k for k, (t, _) in self.exchanges.items() if now - t > EXCHANGE_TTL_SECS]:
            del self.exchanges[key]
        exchange_id = int(request.get("exchange", 0))
        entry = self.exchanges.get(exchange_id)
        if entry is None:
            exchange = self.auth.start_sasl(str(request.get("mechanism", "")), client)
            if exchange is None:
                return {"result": result_to_dict(AuthResult(AuthStatus.FAIL, log_reason="mechanism refused"))}
        else:
            exchange = entry[1]
        raw = request.get("response")
        try:
            response = None if raw is None else base64.b64decode(str(raw), validate=True)
        except ValueError:
            self.exchanges.pop(exchange_id, None)
            return {"result": result_to_dict(AuthResult(AuthStatus.FAIL, log_reason="bad base64"))}
        step = await exchange.step(response)
        if step.result is not None:
            self.exchanges.pop(exchange_id, None)
            return {"result": result_to_dict(step.result)}
        self.exchanges[exchange_id] = (now, exchange)
        return {"challenge": base64.b64encode(step.challenge or b"").decode()}
