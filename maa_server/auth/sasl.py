"""SASL mechanisms (RFC 4422): PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195),
SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677), EXTERNAL (RFC 4422 app. A).

Each exchange is fed decoded client responses and returns challenges or a
final AuthResult; the protocol layer does the base64 and the wire format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import socket
import time
from typing import TYPE_CHECKING

from maa_server.auth.chain import PassdbResult
from maa_server.auth.digests import hmac_md5_from_context
from maa_server.auth.engine import AuthRequest
from maa_server.auth.interface import (
    AuthResult,
    AuthStatus,
    ClientInfo,
    SaslExchange,
    SaslStep,
)
from maa_server.auth.schemes import SchemeError, parse_scram

if TYPE_CHECKING:
    from maa_server.auth.authenticator import MaaAuthenticator


def _fail(reason: str, username: str = "") -> SaslStep:
    return SaslStep(result=AuthResult(AuthStatus.FAIL, username=username, log_reason=reason))


def _decode(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class _Base(SaslExchange):
    def __init__(self, auth: MaaAuthenticator, client: ClientInfo) -> None:
        self.auth = auth
        self.client = client
        self.finished = False

    async def _invalid(self, reason: str, username: str = "") -> SaslStep:
        """Malformed input still costs the failure delay (no probing for free)."""
        self.finished = True
        req = AuthRequest(user=username, client=self.client, mech=self.mechanism)
        result = AuthResult(AuthStatus.FAIL, username=username, log_reason=reason)
        return SaslStep(result=await self.auth.conclude(req, result, {}, None))


class PlainExchange(_Base):
    """RFC 4616: `[authzid] NUL authcid NUL passwd`, optionally as SASL-IR."""

    mechanism = "PLAIN"

    async def step(self, response: bytes | None) -> SaslStep:
        if self.finished:
            return _fail("unexpected response")
        if response is None:
            return SaslStep(challenge=b"")
        self.finished = True
        parts = response.split(b"\0")
        if len(parts) != 3:
            return await self._invalid("invalid input")
        texts = [_decode(p) for p in parts]
        if any(t is None for t in texts) or not texts[1]:
            return await self._invalid("invalid input")
        authzid, authcid, password = (t or "" for t in texts)
        result = await self.auth.authenticate_plain(authcid, password, self.client, "PLAIN", authzid)
        return SaslStep(result=result)


class LoginExchange(_Base):
    """The LOGIN mechanism (draft-murchison-sasl-login): "Username:", "Password:"."""

    mechanism = "LOGIN"

    def __init__(self, auth: MaaAuthenticator, client: ClientInfo) -> None:
        super().__init__(auth, client)
        self.username: str | None = None

    async def step(self, response: bytes | None) -> SaslStep:
        if self.finished:
            return _fail("unexpected response")
        if self.username is None:
            if response is None:
                return SaslStep(challenge=b"Username:")
            name = _decode(response)
            if not name:
                return await self._invalid("invalid input")
            self.username = name
            return SaslStep(challenge=b"Password:")
        self.finished = True
        password = _decode(response or b"")
        if password is None:
            return await self._invalid("invalid input", self.username)
        result = await self.auth.authenticate_plain(self.username, password, self.client, "LOGIN")
        return SaslStep(result=result)


class CramMd5Exchange(_Base):
    """RFC 2195: challenge `<random.time@host>`, response `user hexdigest`."""

    mechanism = "CRAM-MD5"

    def __init__(self, auth: MaaAuthenticator, client: ClientInfo) -> None:
        super().__init__(auth, client)
        self.challenge = (f"<{int.from_bytes(os.urandom(8), 'big')}.{int(time.time())}"
                          f"@{socket.gethostname()}>").encode()
        self.sent = False

    async def step(self, response: bytes | None) -> SaslStep:
        if self.finished:
            return _fail("unexpected response")
        if not self.sent:
            self.sent = True
            return SaslStep(challenge=self.challenge)
        self.finished = True
        text = _decode(response or b"") or ""
        name, _, digest = text.rpartition(" ")
        if not name or len(digest) != 32:
            return await self._invalid("invalid input")
        return await finish_with_credentials(self, name, "CRAM-MD5", lambda creds: hmac.compare_digest(
            hmac_md5_from_context(creds, self.challenge).hex(), digest.lower()))


async def finish_with_credentials(exchange: _Base, name: str, scheme: str, check: object,
                                  authzid: str = "") -> SaslStep:
    """Look up `scheme` credentials for `name` through the passdb chain, run
    `check(credentials) -> bool`, and conclude (delay, penalty, userdb)."""
    auth = exchange.auth
    await auth.wait_penalty(exchange.client)
    req = auth.new_request(name, exchange.client, exchange.mechanism, authzid)
    if isinstance(req, AuthResult):
        dummy = AuthRequest(user=name, client=exchange.client, mech=exchange.mechanism)
        return SaslStep(result=await auth.conclude(dummy, req, {}, None))
    chain, fields = await auth.engine.run_passdbs(req, "credentials", scheme)
    if chain.succeeded and req.credentials is not None:
        try:
            ok = bool(check(req.credentials))  # type: ignore[operator]
        except SchemeError:
            ok = False
        if not ok:
            auth.engine.verbose(None, req.user, req, "Password mismatch")
            chain.state.final = PassdbResult.PASSWORD_MISMATCH
    result = await auth.engine.finish(req, chain, fields)
    return SaslStep(result=await auth.conclude(req, result, fields, None))


def _scram_unescape(name: str) -> str | None:
    """RFC 5802 section 5.1: `=2C` is `,` and `=3D` is `=`; other `=` are errors."""
    out = []
    i = 0
    while i < len(name):
        if name[i] == "=":
            code = name[i + 1:i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                return None
            i += 3
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


class ScramExchange(_Base):
    """RFC 5802 / RFC 7677, without channel binding (`p=` is refused)."""

    @staticmethod
    def server_nonce() -> str:
        """The server's half of the nonce (printable, no commas)."""
        return base64.b64encode(os.urandom(18)).decode()

    def __init__(self, auth: MaaAuthenticator, client: ClientInfo, algo: str) -> None:
        super().__init__(auth, client)
        self.algo = algo
        self.mechanism = "SCRAM-SHA-1" if algo == "sha1" else "SCRAM-SHA-256"
        self.state = "first"
        self.gs2_header = ""
        self.client_first_bare = ""
        self.server_first = ""
        self.nonce = ""
        self.name = ""
        self.authzid = ""
        self.server_key = b""
        self.stored_key = b""
        self.final_result: AuthResult | None = None

    async def step(self, response: bytes | None) -> SaslStep:
        if self.state == "first":
            if response is None:
                return SaslStep(challenge=b"")
            return await self._client_first(response)
        if self.state == "final":
            return await self._client_final(response or b"")
        if self.state == "done" and self.final_result is not None:
            # The client acknowledged the server signature with an empty response.
            self.state = "closed"
            if response:
                return _fail("unexpected response")
            return SaslStep(result=self.final_result)
        return _fail("unexpected response")

    async def _client_first(self, response: bytes) -> SaslStep:
        text = _decode(response)
        if text is None:
            return await self._invalid("invalid input")
        parts = text.split(",")
        if len(parts) < 4 or parts[0] not in ("n", "y") or parts[0].startswith("p"):
            return await self._invalid("Unsupported or invalid GS2 header")
        if parts[1]:
            if not parts[1].startswith("a="):
                return await self._invalid("Invalid authzid")
            self.authzid = _scram_unescape(parts[1][2:]) or ""
        self.gs2_header = f"{parts[0]},{parts[1]},"
        self.client_first_bare = ",".join(parts[2:])
        if not parts[2].startswith("n=") or not parts[3].startswith("r=") or len(parts[3]) < 3:
            return await self._invalid("Invalid client-first-message")
        name = _scram_unescape(parts[2][2:])
        if not name:
            return await self._invalid("Invalid username")
        self.name = name
        client_nonce = parts[3][2:]
        scheme = self.mechanism
        # Look the credentials up now; the verdict comes after the proof.
        req = self.auth.new_request(name, self.client, self.mechanism, self.authzid)
        if isinstance(req, AuthResult):
            return await self._invalid(req.log_reason, name)
        self.req = req
        await self.auth.wait_penalty(self.client)
        chain, fields = await self.auth.engine.run_passdbs(req, "credentials", scheme)
        self.chain, self.fields = chain, fields
        salt, iterations = os.urandom(16), 4096
        if chain.succeeded and req.credentials is not None:
            try:
                iterations, salt, self.stored_key, self.server_key = parse_scram(req.credentials)
            except SchemeError:
                chain.state.final = PassdbResult.INTERNAL_FAILURE
        self.nonce = client_nonce + self.server_nonce()
        self.server_first = f"r={self.nonce},s={base64.b64encode(salt).decode()},i={iterations}"
        self.state = "final"
        return SaslStep(challenge=self.server_first.encode())

    async def _client_final(self, response: bytes) -> SaslStep:
        self.state = "closed"
        text = _decode(response) or ""
        parts = text.split(",")
        attrs = {p[:1]: p[2:] for p in parts if len(p) >= 2 and p[1] == "="}
        without_proof = ",".join(p for p in parts if not p.startswith("p="))
        expected_cbind = base64.b64encode(self.gs2_header.encode()).decode()
        req, chain = self.req, self.chain
        ok = False
        server_signature = b""
        if attrs.get("c") == expected_cbind and attrs.get("r") == self.nonce and "p" in attrs \
                and chain.succeeded and self.stored_key:
            auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
            try:
                proof = base64.b64decode(attrs["p"], validate=True)
            except binascii.Error:
                proof = b""
            signature = hmac.new(self.stored_key, auth_message, self.algo).digest()
            if len(proof) == len(signature):
                client_key = bytes(a ^ b for a, b in zip(proof, signature))
                ok = hmac.compare_digest(hashlib.new(self.algo, client_key).digest(), self.stored_key)
            server_signature = hmac.new(self.server_key, auth_message, self.algo).digest()
        if chain.succeeded and not ok:
            self.auth.engine.verbose(None, req.user, req, "Password mismatch")
            chain.state.final = PassdbResult.PASSWORD_MISMATCH
        result = await self.auth.engine.finish(req, chain, self.fields)
        result = await self.auth.conclude(req, result, self.fields, None)
        if not result.ok:
            return SaslStep(result=result)
        self.final_result = result
        self.state = "done"
        return SaslStep(challenge=b"v=" + base64.b64encode(server_signature))


class ExternalExchange(_Base):
    """RFC 4422 appendix A: the identity is the verified TLS client certificate."""

    mechanism = "EXTERNAL"

    async def step(self, response: bytes | None) -> SaslStep:
        if self.finished:
            return _fail("unexpected response")
        if response is None:
            return SaslStep(challenge=b"")
        self.finished = True
        authzid = _decode(response)
        cert_user = self.client.cert_username
        if not cert_user or not self.auth.settings.ssl_username_from_cert:
            return await self._invalid("No username in client certificate")
        if authzid and authzid != cert_user:
            return await self._invalid("authzid differs from the certificate's user", cert_user)
        await self.auth.wait_penalty(self.client)
        req = self.auth.new_request(cert_user, self.client, "EXTERNAL")
        if isinstance(req, AuthResult):
            return await self._invalid(req.log_reason, cert_user)
        chain, fields = await self.auth.engine.run_passdbs(req, "lookup")
        result = await self.auth.engine.finish(req, chain, fields)
        return SaslStep(result=await self.auth.conclude(req, result, fields, None))


class ApopExchange(_Base):
    """POP3 APOP (RFC 1939 section 7) as Dovecot's private `APOP` mechanism
    (mech-apop.c): data = challenge NUL user NUL hex digest. Needs a
    plaintext-recoverable stored password."""

    mechanism = "APOP"

    async def step(self, response: bytes | None) -> SaslStep:
        if self.finished:
            return _fail("unexpected response")
        if response is None:
            return SaslStep(challenge=b"")
        self.finished = True
        parts = response.split(b"\0")
        if len(parts) != 3 or not parts[0].startswith(b"<") or not parts[1]:
            return await self._invalid("invalid input")
        challenge, user, digest = parts
        name = _decode(user)
        if name is None or len(digest) != 32:
            return await self._invalid("invalid input")
        expected = digest.decode("ascii", "replace").lower()
        return await finish_with_credentials(self, name, "PLAIN", lambda creds: hmac.compare_digest(
            hashlib.md5(challenge + creds).hexdigest(), expected))


def make_exchange(mech: str, auth: MaaAuthenticator, client: ClientInfo) -> SaslExchange | None:
    if mech == "PLAIN":
        return PlainExchange(auth, client)
    if mech == "LOGIN":
        return LoginExchange(auth, client)
    if mech == "CRAM-MD5":
        return CramMd5Exchange(auth, client)
    if mech == "SCRAM-SHA-1":
        return ScramExchange(auth, client, "sha1")
    if mech == "SCRAM-SHA-256":
        return ScramExchange(auth, client, "sha256")
    if mech == "EXTERNAL":
        return ExternalExchange(auth, client)
    if mech == "APOP":
        return ApopExchange(auth, client)
    return None
