"""OTP / S/KEY one-time password hashing (RFC 2289), for the OTP scheme.

Dovecot stores `{OTP}<algo> <seq> <seed> <hex of the 64-bit state>`
(src/lib-otp). Verifying a plaintext password means regenerating the state
for the same algorithm, seed and sequence number.
"""

from __future__ import annotations

import hashlib
import os
import struct

from maa_server.auth.digests import md4

OTP_ALGORITHMS = ("md4", "md5", "sha1")
DEFAULT_SEQUENCE = 1024


def _fold(algo: str, digest: bytes) -> bytes:
    if algo == "sha1":
        # RFC 2289 appendix A: fold the five words, then store them
        # least-significant byte first.
        w = struct.unpack(">5I", digest)
        return struct.pack("<2I", w[0] ^ w[2] ^ w[4], w[1] ^ w[3])
    return bytes(a ^ b for a, b in zip(digest[:8], digest[8:16]))


def _hash(algo: str, data: bytes) -> bytes:
    if algo == "md4":
        return md4(data)
    return hashlib.new(algo, data).digest()


def otp_state(algo: str, seq: int, seed: str, password: bytes) -> bytes:
    """The 8-byte OTP value after `seq` iterations (RFC 2289 section 6)."""
    result = _fold(algo, _hash(algo, seed.lower().encode("ascii") + password))
    for _ in range(seq):
        result = _fold(algo, _hash(algo, result))
    return result


def otp_generate(password: bytes) -> str:
    seed = os.urandom(8).hex()
    return f"sha1 {DEFAULT_SEQUENCE} {seed} {otp_state('sha1', DEFAULT_SEQUENCE, seed, password).hex()}"


def otp_verify(stored: str, password: bytes) -> bool:
    """Raises ValueError for a malformed stored value."""
    parts = stored.split()
    if len(parts) != 4 or parts[0].lower() not in OTP_ALGORITHMS:
        raise ValueError("Invalid OTP data in passdb")
    algo, seq_text, seed, value = parts
    seq = int(seq_text)
    if not 0 <= seq <= 9999 or not 1 <= len(seed) <= 16:
        raise ValueError("Invalid OTP data in passdb")
    return otp_state(algo.lower(), seq, seed, password).hex() == value.lower()
