"""Thin ctypes bindings to the C libraries Dovecot itself uses for hashes.

`crypt(3)` comes from Debian's libxcrypt (`libcrypt.so.1`: DES, `$1$`, `$5$`,
`$6$`, `$y$` yescrypt ...) because Python 3.13 dropped the `crypt` module;
we call the re-entrant `crypt_rn` so worker threads never share state.
Argon2 comes from libsodium, as in Dovecot's password-scheme-sodium.c.
Both are optional at runtime: a missing library makes the schemes that need
it report "scheme not available" instead of crashing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from functools import lru_cache

# sizeof(struct crypt_data) in libxcrypt is 32768; leave headroom.
_CRYPT_DATA_SIZE = 65536
_local = threading.local()


@lru_cache(maxsize=1)
def _libcrypt() -> ctypes.CDLL | None:
    for name in ("libcrypt.so.1", ctypes.util.find_library("crypt") or ""):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        fn = lib.crypt_rn
        fn.restype = ctypes.c_char_p
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
        return lib
    return None


def crypt_available() -> bool:
    return _libcrypt() is not None


def crypt(password: bytes, setting: str) -> str | None:
    """crypt(3) of `password` with `setting` (a salt or a whole hash).

    Returns None when the setting is invalid or libcrypt is missing.
    """
    lib = _libcrypt()
    if lib is None:
        return None
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    ctypes.memset(buf, 0, _CRYPT_DATA_SIZE)
    result = lib.crypt_rn(password, setting.encode("ascii", "replace"), buf, _CRYPT_DATA_SIZE)
    if not result or result.startswith(b"*"):
        return None
    return bytes(result).decode("ascii", "replace")


# -- libsodium argon2 (crypto_pwhash_*) ----------------------------------------

ARGON2I_ALG = 1  # crypto_pwhash_ALG_ARGON2I13
ARGON2ID_ALG = 2  # crypto_pwhash_ALG_ARGON2ID13
_PWHASH_STRBYTES = 128


@lru_cache(maxsize=1)
def _libsodium() -> ctypes.CDLL | None:
    for name in ("libsodium.so.23", ctypes.util.find_library("sodium") or ""):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if lib.sodium_init() < 0:
            return None
        lib.crypto_pwhash_str_verify.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong]
        lib.crypto_pwhash_str_alg.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong,
                                              ctypes.c_ulonglong, ctypes.c_size_t, ctypes.c_int]
        return lib
    return None


def argon2_available() -> bool:
    return _libsodium() is not None


def argon2_verify(encoded: str, password: bytes) -> bool | None:
    """None when libsodium is missing; else whether the password matches."""
    lib = _libsodium()
    if lib is None:
        return None
    status: int = lib.crypto_pwhash_str_verify(encoded.encode("ascii", "replace"), password,
                                               len(password))
    return status == 0


def argon2_hash(password: bytes, alg: int, opslimit: int, memlimit: int) -> str | None:
    lib = _libsodium()
    if lib is None:
        return None
    out = ctypes.create_string_buffer(_PWHASH_STRBYTES)
    if lib.crypto_pwhash_str_alg(out, password, len(password), opslimit, memlimit, alg) != 0:
        return None
    return out.value.decode("ascii")
