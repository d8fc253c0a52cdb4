"""Password schemes, as Dovecot 2.3 stores and verifies them.

Model (src/auth/password-scheme.c): every scheme works on *raw* bytes; the
stored text is `{SCHEME[.b64|.hex]}encoded`. The encoding suffix overrides
the scheme's default encoding. For schemes with a fixed digest length,
Dovecot accepts hex or base64 regardless of the default (a string of exactly
2 x digest length is hex). Verification is synchronous and may be slow
(bcrypt, argon2, SHA-crypt): callers run it in a thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt as _bcrypt

from maa_server.auth import native
from maa_server.auth.digests import cram_md5_context, md4
from maa_server.auth.otp import otp_generate, otp_verify


class UnknownScheme(Exception):
    """The `{SCHEME}` named no scheme we know."""


class SchemeError(Exception):
    """The stored value is malformed, or a scheme cannot be generated."""


_SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _salt(n: int) -> str:
    return "".join(_SALT_CHARS[b % 64] for b in os.urandom(n))


def as_bytes(password: str | bytes) -> bytes:
    if isinstance(password, bytes):
        return password
    return password.encode("utf-8", "surrogateescape")


# -- the crypt(3) family ------------------------------------------------------

def _is_bcrypt(value: str) -> bool:
    return len(value) > 4 and value[0] == "$" and value[1] == "2" and value[3] == "$"


def crypt_verify(plain: bytes, raw: bytes, _user: str) -> bool:
    """Any crypt(3) string: bcrypt, DES, $1$, $5$, $6$, $y$ (password-scheme-crypt.c)."""
    value = raw.decode("ascii", "replace")
    if not value:
        return False  # an empty crypt string would "match" anything
    if _is_bcrypt(value) and not native.crypt_available():
        try:
            return _bcrypt.checkpw(plain[:72], raw)
        except ValueError:
            return False
    result = native.crypt(plain, value)
    if result is None:
        if not native.crypt_available():
            raise SchemeError("crypt(3) is not available (libcrypt.so.1 missing)")
        return False
    return hmac.compare_digest(result.encode("ascii"), raw)


def _bcrypt_generate(plain: bytes, _user: str, rounds: int) -> bytes:
    # doveadm clamps the cost into bcrypt's range (-r 3 gives $2y$04$).
    cost = min(max(rounds or 5, 4), 31)
    # Dovecot writes the $2y$ prefix; the algorithm is the same as $2b$.
    salt = _bcrypt.gensalt(cost, prefix=b"2b")
    return b"$2y$" + _bcrypt.hashpw(plain[:72], salt)[4:]


def _crypt_with(setting: str, plain: bytes) -> bytes:
    result = native.crypt(plain, setting)
    if result is None:
        raise SchemeError("crypt(3) failed (libcrypt.so.1 missing?)")
    return result.encode("ascii")


def _sha_crypt_generator(prefix: str) -> Callable[[bytes, str, int], bytes]:
    def generate(plain: bytes, _user: str, rounds: int) -> bytes:
        if rounds and not 1000 <= rounds <= 999999999:
            raise SchemeError(f"Invalid number of rounds: {rounds}")
        # The default 5000 rounds is not written, as doveadm does.
        explicit = rounds and rounds != 5000
        setting = f"${prefix}$" + (f"rounds={rounds}$" if explicit else "") + _salt(16)
        return _crypt_with(setting, plain)
    return generate


def _md5_crypt_generate(plain: bytes, _user: str, _rounds: int) -> bytes:
    return _crypt_with("$1$" + _salt(8), plain)


def _des_crypt_generate(plain: bytes, _user: str, _rounds: int) -> bytes:
    return _crypt_with(_salt(2), plain)


# -- digests --------------------------------------------------------------------

def _digest_scheme(algo: str) -> tuple[Callable[[bytes, bytes, str], bool],
                                       Callable[[bytes, str, int], bytes]]:
    def digest(plain: bytes) -> bytes:
        return md4(plain) if algo == "md4" else hashlib.new(algo, plain).digest()

    def verify(plain: bytes, raw: bytes, _user: str) -> bool:
        return hmac.compare_digest(digest(plain), raw)

    def generate(plain: bytes, _user: str, _rounds: int) -> bytes:
        return digest(plain)
    return verify, generate


def _salted_scheme(algo: str) -> tuple[Callable[[bytes, bytes, str], bool],
                                       Callable[[bytes, str, int], bytes]]:
    size = hashlib.new(algo).digest_size

    def verify(plain: bytes, raw: bytes, _user: str) -> bool:
        if len(raw) <= size:
            raise SchemeError(f"{algo.upper()} password too short")
        return hmac.compare_digest(hashlib.new(algo, plain + raw[size:]).digest(), raw[:size])

    def generate(plain: bytes, _user: str, _rounds: int) -> bytes:
        salt = os.urandom(4)
        return hashlib.new(algo, plain + salt).digest() + salt
    return verify, generate


def _md5_verify(plain: bytes, raw: bytes, user: str) -> bool:
    """MD5: either an MD5-CRYPT string or a PLAIN-MD5 digest."""
    if raw.startswith(b"$1$"):
        return crypt_verify(plain, raw, user)
    text = raw.decode("ascii", "replace")
    digest = decode_raw(text, "hex", 16, None)
    return hmac.compare_digest(hashlib.md5(plain).digest(), digest)


def _plain_verify(plain: bytes, raw: bytes, _user: str) -> bool:
    return hmac.compare_digest(plain, raw)


def _plain_generate(plain: bytes, _user: str, _rounds: int) -> bytes:
    return plain


def _plain_trunc_verify(plain: bytes, raw: bytes, _user: str) -> bool:
    head, sep, stored = raw.partition(b"-")
    if not sep or not head.isdigit():
        raise SchemeError("PLAIN-TRUNC missing length: prefix")
    trunc = int(head)
    if len(stored) == trunc and len(plain) >= trunc:
        return hmac.compare_digest(plain[:trunc], stored)
    return hmac.compare_digest(plain, stored)




def _digest_md5_raw(plain: bytes, user: str) -> bytes:
    if not user:
        raise SchemeError("digest_md5_generate(): username not given")
    name, _, realm = user.rpartition("@") if "@" in user else (user, "", "")
    return hashlib.md5(f"{name}:{realm}:".encode() + plain).digest()


def _digest_md5_verify(plain: bytes, raw: bytes, user: str) -> bool:
    return hmac.compare_digest(_digest_md5_raw(plain, user), raw)


def _cram_verify(plain: bytes, raw: bytes, _user: str) -> bool:
    return hmac.compare_digest(cram_md5_context(plain), raw)


def _cram_generate(plain: bytes, _user: str, _rounds: int) -> bytes:
    return cram_md5_context(plain)


# -- PBKDF2 and SCRAM (password-scheme-pbkdf2.c, password-scheme-scram.c) -------

def _pbkdf2_verify(plain: bytes, raw: bytes, _user: str) -> bool:
    fields = raw.decode("ascii", "replace").split("$")
    if len(fields) != 5 or fields[0] or fields[1] != "1" or not fields[3].isdigit():
        raise SchemeError("Invalid PBKDF2 passdb entry format")
    key = hashlib.pbkdf2_hmac("sha1", plain, fields[2].encode(), int(fields[3]), 20)
    return hmac.compare_digest(key.hex(), fields[4].lower())


def _pbkdf2_generate(plain: bytes, _user: str, rounds: int) -> bytes:
    rounds = rounds or 5000
    salt = _salt(16)
    key = hashlib.pbkdf2_hmac("sha1", plain, salt.encode(), rounds, 20)
    return f"$1${salt}${rounds}${key.hex()}".encode()


def scram_keys(algo: str, plain: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) of RFC 5802 section 3."""
    salted = hashlib.pbkdf2_hmac(algo, plain, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", algo).digest()
    server_key = hmac.new(salted, b"Server Key", algo).digest()
    return hashlib.new(algo, client_key).digest(), server_key


def parse_scram(raw: bytes) -> tuple[int, bytes, bytes, bytes]:
    """`iter,salt,StoredKey,ServerKey` -> decoded parts."""
    fields = raw.decode("ascii", "replace").split(",")
    if len(fields) != 4 or not fields[0].isdigit():
        raise SchemeError("Invalid SCRAM credentials format")
    try:
        return (int(fields[0]), base64.b64decode(fields[1], validate=True),
                base64.b64decode(fields[2], validate=True), base64.b64decode(fields[3], validate=True))
    except binascii.Error as exc:
        raise SchemeError("Invalid SCRAM credentials format") from exc


def _scram_scheme(algo: str) -> tuple[Callable[[bytes, bytes, str], bool],
                                      Callable[[bytes, str, int], bytes]]:
    def verify(plain: bytes, raw: bytes, _user: str) -> bool:
        iterations, salt, stored_key, server_key = parse_scram(raw)
        got_stored, got_server = scram_keys(algo, plain, salt, iterations)
        return hmac.compare_digest(got_stored, stored_key) and hmac.compare_digest(got_server, server_key)

    def generate(plain: bytes, _user: str, _rounds: int) -> bytes:
        iterations = 4096  # doveadm pw -r does not change it (observed)
        salt = os.urandom(16)
        stored_key, server_key = scram_keys(algo, plain, salt, iterations)
        b64 = base64.b64encode
        return b"%d,%s,%s,%s" % (iterations, b64(salt), b64(stored_key), b64(server_key))
    return verify, generate


# -- argon2 (password-scheme-sodium.c) and OTP --------------------------------------

def _argon2_verify(plain: bytes, raw: bytes, _user: str) -> bool:
    result = native.argon2_verify(raw.decode("ascii", "replace"), plain)
    if result is None:
        raise SchemeError("argon2 needs libsodium (libsodium.so.23 missing)")
    return result


def _argon2_generator(alg: int, ops: int, sensitive_ops: int, mem: int,
                      sensitive_mem: int) -> Callable[[bytes, str, int], bytes]:
    """Rounds are libsodium's opslimit; from the SENSITIVE opslimit on, the
    memory limit jumps to SENSITIVE too (password-scheme-sodium.c)."""
    def generate(plain: bytes, _user: str, rounds: int) -> bytes:
        opslimit = rounds or ops
        memlimit = mem if opslimit < sensitive_ops else sensitive_mem
        out = native.argon2_hash(plain, alg, opslimit, memlimit)
        if out is None:
            raise SchemeError("argon2 needs libsodium (libsodium.so.23 missing)")
        return out.encode("ascii")
    return generate


def _otp_verify(plain: bytes, raw: bytes, _user: str) -> bool:
    try:
        return otp_verify(raw.decode("ascii", "replace"), plain)
    except ValueError as exc:
        raise SchemeError(str(exc)) from exc


def _otp_generate(plain: bytes, _user: str, _rounds: int) -> bytes:
    return otp_generate(plain).encode("ascii")


# -- the table ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Scheme:
    name: str
    default_encoding: str  # "none", "hex", "base64"
    raw_len: int  # fixed raw length, 0 = variable
    verify: Callable[[bytes, bytes, str], bool]
    generate: Callable[[bytes, str, int], bytes]


def _build() -> dict[str, Scheme]:
    table: dict[str, Scheme] = {}

    def add(name: str, enc: str, raw_len: int,
            pair: tuple[Callable[[bytes, bytes, str], bool], Callable[[bytes, str, int], bytes]]) -> None:
        table[name] = Scheme(name, enc, raw_len, pair[0], pair[1])

    blf = (crypt_verify, _bcrypt_generate)
    add("CRYPT", "none", 0, blf)
    add("BLF-CRYPT", "none", 0, blf)
    add("DES-CRYPT", "none", 0, (crypt_verify, _des_crypt_generate))
    add("MD5-CRYPT", "none", 0, (crypt_verify, _md5_crypt_generate))
    add("SHA256-CRYPT", "none", 0, (crypt_verify, _sha_crypt_generator("5")))
    add("SHA512-CRYPT", "none", 0, (crypt_verify, _sha_crypt_generator("6")))
    add("MD5", "none", 0, (_md5_verify, _md5_crypt_generate))
    add("PLAIN-MD4", "hex", 16, _digest_scheme("md4"))
    add("PLAIN-MD5", "hex", 16, _digest_scheme("md5"))
    add("LDAP-MD5", "base64", 16, _digest_scheme("md5"))
    add("SHA", "base64", 20, _digest_scheme("sha1"))
    add("SHA1", "base64", 20, _digest_scheme("sha1"))
    add("SHA256", "base64", 32, _digest_scheme("sha256"))
    add("SHA512", "base64", 64, _digest_scheme("sha512"))
    add("SMD5", "base64", 0, _salted_scheme("md5"))
    add("SSHA", "base64", 0, _salted_scheme("sha1"))
    add("SSHA256", "base64", 0, _salted_scheme("sha256"))
    add("SSHA512", "base64", 0, _salted_scheme("sha512"))
    for name in ("PLAIN", "CLEAR", "CLEARTEXT"):
        add(name, "none", 0, (_plain_verify, _plain_generate))
    # doveadm writes PLAIN-TRUNC without the length prefix (and then cannot verify it).
    add("PLAIN-TRUNC", "none", 0, (_plain_trunc_verify, _plain_generate))
    add("CRAM-MD5", "hex", 32, (_cram_verify, _cram_generate))
    add("HMAC-MD5", "hex", 32, (_cram_verify, _cram_generate))
    add("DIGEST-MD5", "hex", 16, (_digest_md5_verify, lambda p, u, _r: _digest_md5_raw(p, u)))
    add("PBKDF2", "none", 0, (_pbkdf2_verify, _pbkdf2_generate))
    add("SCRAM-SHA-1", "none", 0, _scram_scheme("sha1"))
    add("SCRAM-SHA-256", "none", 0, _scram_scheme("sha256"))
    add("ARGON2I", "none", 0, (_argon2_verify, _argon2_generator(native.ARGON2I_ALG, 4, 8, 32 << 20, 512 << 20)))
    add("ARGON2ID", "none", 0, (_argon2_verify, _argon2_generator(native.ARGON2ID_ALG, 3, 4, 64 << 20, 1 << 30)))
    add("OTP", "none", 0, (_otp_verify, _otp_generate))
    return table


SCHEMES = _build()
# `doveadm pw -l` prints its hash table's order; we keep the exact line.
DOVEADM_LIST_ORDER = ["SHA1", "SSHA512", "SCRAM-SHA-256", "BLF-CRYPT", "PLAIN", "HMAC-MD5", "OTP", "SHA512", "SHA", "DES-CRYPT", "CRYPT", "SSHA", "MD5-CRYPT", "PLAIN-MD4", "PLAIN-MD5", "SCRAM-SHA-1", "SHA512-CRYPT", "CLEAR", "CLEARTEXT", "ARGON2I", "ARGON2ID", "SSHA256", "MD5", "PBKDF2", "SHA256", "CRAM-MD5", "PLAIN-TRUNC", "SHA256-CRYPT", "SMD5", "DIGEST-MD5", "LDAP-MD5"]
# Schemes whose raw value is the plaintext itself (usable for any SASL mechanism).
PLAINTEXT_SCHEMES = frozenset({"PLAIN", "CLEAR", "CLEARTEXT"})
# Aliases that produce identical credentials.
CREDENTIAL_ALIASES = {"HMAC-MD5": "CRAM-MD5", "SHA1": "SHA", "CLEAR": "PLAIN", "CLEARTEXT": "PLAIN"}


def lookup_scheme(name: str) -> tuple[Scheme, str | None]:
    """`SHA256.hex` -> (SHA256, "hex"). Raises UnknownScheme."""
    base, dot, suffix = name.upper().partition(".")
    encoding: str | None = None
    if dot:
        encoding = {"B64": "base64", "BASE64": "base64", "HEX": "hex"}.get(suffix)
        if encoding is None:
            raise UnknownScheme(name)
    scheme = SCHEMES.get(base)
    if scheme is None:
        raise UnknownScheme(name)
    return scheme, encoding


def decode_raw(value: str, default_encoding: str, raw_len: int, override: str | None) -> bytes:
    """Decode the text after `{SCHEME}` into raw bytes (password_decode())."""
    encoding = override or default_encoding
    if encoding == "none":
        return as_bytes(value)
    if override is None and raw_len:
        # Fixed-length digests: either form is accepted whatever the default.
        if len(value) == raw_len * 2:
            encoding = "hex"
        elif len(value) == 4 * ((raw_len + 2) // 3):
            encoding = "base64"
    if encoding == "hex":
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass  # as Dovecot: some lengths look like both; try base64
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SchemeError("Invalid password encoding") from exc


def encode_raw(raw: bytes, encoding: str) -> str:
    if encoding == "hex":
        return raw.hex()
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class StoredPassword:
    """A passdb's password split into its scheme and encoded value."""

    scheme: str  # as written, upper case, with suffix ("SHA256.HEX")
    value: str

    @property
    def base_scheme(self) -> str:
        return self.scheme.partition(".")[0]


def parse_stored(stored: str, default_scheme: str = "CRYPT") -> StoredPassword:
    """Split `{SCHEME}value`; a bare `$1$...` is MD5-CRYPT (password_get_scheme())."""
    if stored.startswith("$1$"):
        # Only the part up to the third `$`-terminated field is the hash.
        parts = stored.split("$")
        if len(parts) >= 4:
            return StoredPassword("MD5-CRYPT", "$".join(parts[:4]))
        return StoredPassword("MD5-CRYPT", stored)
    if stored.startswith("{"):
        end = stored.find("}")
        if end > 0:
            return StoredPassword(stored[1:end].upper(), stored[end + 1:])
    return StoredPassword(default_scheme.upper(), stored)


def verify(stored: StoredPassword, password: str | bytes, user: str = "") -> bool:
    """Raises UnknownScheme or SchemeError; may be slow (run in a thread)."""
    scheme, encoding = lookup_scheme(stored.scheme)
    raw = decode_raw(stored.value, scheme.default_encoding, scheme.raw_len, encoding)
    return scheme.verify(as_bytes(password), raw, user)


def generate(scheme_name: str, password: str | bytes, user: str = "", rounds: int = 0) -> str:
    """`{SCHEME}encoded` as `doveadm pw` prints it."""
    scheme, encoding = lookup_scheme(scheme_name)
    raw = scheme.generate(as_bytes(password), user, rounds)
    return "{" + scheme_name.upper() + "}" + encode_raw(raw, encoding or scheme.default_encoding)


def credentials(stored: StoredPassword, wanted: str, user: str = "") -> bytes | None:
    """Raw credentials of scheme `wanted` (CRAM-MD5, SCRAM-SHA-*, PLAIN...) for a
    non-plaintext SASL mechanism, or None if the stored scheme cannot give them
    ("scheme not available", passdb_get_credentials())."""
    scheme, encoding = lookup_scheme(stored.scheme)
    raw = decode_raw(stored.value, scheme.default_encoding, scheme.raw_len, encoding)
    have = CREDENTIAL_ALIASES.get(scheme.name, scheme.name)
    want = CREDENTIAL_ALIASES.get(wanted.upper(), wanted.upper())
    if have == want:
        return raw
    if scheme.name in PLAINTEXT_SCHEMES:
        return SCHEMES[want].generate(raw, user, 0)
    return None
