"""Auth penalty per client IP (spec 2.3; src/auth/auth-penalty.c)."""

from __future__ import annotations

from maa_server.auth.penalty import PENALTY_EXPIRE_SECS, AuthPenalty


def test_doubling_up_to_fifteen_seconds() -> None:
    p = AuthPenalty(2.0)
    assert p.delay_for("192.0.2.1", now=0) == 0
    delays = []
    for i in range(6):
        p.failed("192.0.2.1", p.checksum("u", f"pw{i}"), now=i)
        delays.append(p.delay_for("192.0.2.1", now=i))
    assert delays == [2, 4, 8, 15, 15, 15]
    assert p.delay_for("192.0.2.2", now=6) == 0  # per IP


def test_same_wrong_password_again_does_not_grow() -> None:
    p = AuthPenalty(2.0)
    same = p.checksum("alice", "saved-wrong-password")
    for now in range(5):
        p.failed("192.0.2.1", same, now=now)
    assert p.delay_for("192.0.2.1", now=5) == 2


def test_success_resets_and_entries_expire() -> None:
    p = AuthPenalty(2.0)
    p.failed("192.0.2.1", now=0)
    p.succeeded("192.0.2.1")
    assert p.delay_for("192.0.2.1", now=1) == 0
    p.failed("192.0.2.1", now=0)
    assert p.delay_for("192.0.2.1", now=PENALTY_EXPIRE_SECS + 1) == 0


def test_zero_failure_delay_disables_penalty() -> None:
    p = AuthPenalty(0.0)
    p.failed("192.0.2.1", now=0)
    assert p.delay_for("192.0.2.1", now=0) == 0
