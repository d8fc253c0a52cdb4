"""Digest helpers Dovecot's schemes need and hashlib does not offer.

* MD4 (PLAIN-MD4, OTP md4): OpenSSL 3 hides it, so we use passlib's
  pure-Python fallback through `lookup_hash`.
* The CRAM-MD5 "context" (src/lib/hmac-cram-md5.c): the two MD5 chaining
  states after one compression of key^opad and key^ipad. hashlib does not
  expose chaining states, hence a small MD5 compression function (RFC 1321
  section 3.4).
"""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Any

from passlib.crypto.digest import lookup_hash  # type: ignore[import-untyped]


def md4(data: bytes) -> bytes:
    try:
        return hashlib.new("md4", data).digest()
    except ValueError:
        return lookup_hash("md4").const(data).digest()  # type: ignore[no-any-return]


def new_md4() -> Any:
    try:
        return hashlib.new("md4")
    except ValueError:
        return lookup_hash("md4").const()


# RFC 1321 section 3.4: per-round shifts and the sine-derived constants.
_S = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
_K = [int(abs(math.sin(i + 1)) * 2**32) & 0xFFFFFFFF for i in range(64)]
_MD5_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)


def _rotl(x: int, c: int) -> int:
    x &= 0xFFFFFFFF
    return ((x << c) | (x >> (32 - c))) & 0xFFFFFFFF


def md5_compress(state: tuple[int, int, int, int], block: bytes) -> tuple[int, int, int, int]:
    """One MD5 compression of a 64-byte block."""
    m = struct.unpack("<16I", block)
    a, b, c, d = state
    for i in range(64):
        if i < 16:
            f, g = (b & c) | (~b & d), i
        elif i < 32:
            f, g = (d & b) | (~d & c), (5 * i + 1) % 16
        elif i < 48:
            f, g = b ^ c ^ d, (3 * i + 5) % 16
        else:
            f, g = c ^ (b | ~d), (7 * i) % 16
        f = (f + a + _K[i] + m[g]) & 0xFFFFFFFF
        a, d, c = d, c, b
        b = (b + _rotl(f, _S[i])) & 0xFFFFFFFF
    return ((state[0] + a) & 0xFFFFFFFF, (state[1] + b) & 0xFFFFFFFF,
            (state[2] + c) & 0xFFFFFFFF, (state[3] + d) & 0xFFFFFFFF)


def cram_md5_context(password: bytes) -> bytes:
    """The 32 bytes Dovecot stores for CRAM-MD5/HMAC-MD5 (outer, then inner state)."""
    key = hashlib.md5(password).digest() if len(password) > 64 else password
    key = key.ljust(64, b"\0")
    outer = md5_compress(_MD5_INIT, bytes(k ^ 0x5C for k in key))
    inner = md5_compress(_MD5_INIT, bytes(k ^ 0x36 for k in key))
    return struct.pack("<4I", *outer) + struct.pack("<4I", *inner)


def _md5_finish(state: tuple[int, int, int, int], data: bytes, prefix_len: int) -> bytes:
    """MD5 of (64-byte block already compressed into `state`) + data."""
    total_bits = (prefix_len + len(data)) * 8
    msg = data + b"\x80"
    msg += b"\0" * ((56 - len(msg) % 64) % 64) + struct.pack("<Q", total_bits & (2**64 - 1))
    for i in range(0, len(msg), 64):
        state = md5_compress(state, msg[i:i + 64])
    return struct.pack("<4I", *state)


def hmac_md5_from_context(context: bytes, message: bytes) -> bytes:
    """HMAC-MD5(key, message) given only the stored CRAM-MD5 context (RFC 2195)."""
    outer = struct.unpack("<4I", context[:16])
    inner = struct.unpack("<4I", context[16:32])
    inner_digest = _md5_finish(inner, message, 64)
    return _md5_finish(outer, inner_digest, 64)
