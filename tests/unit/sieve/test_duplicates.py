"""Dovecot's duplicate database (~/.dovecot.lda-dupes), read and written
as Dovecot 2.3 / Pigeonhole 0.5 do."""

from __future__ import annotations

from pathlib import Path

from maa_server.sieve.duplicates import DuplicateTracker, vacation_handle, vacation_id

# Written by the real Dovecot 2.3.19 LMTP + Pigeonhole 0.5.19 after a redirect
# of <m3@example.org> to carol@example.net and a `vacation :days 1 "I am away"`
# answer to sender@example.org, for user alice.
DOVECOT_FILE = bytes.fromhex(
    "020000000994096b36000000050000003c6d33406578616d706c652e6f72673e2d616c696365406578616d706c652e"
    "636f6d2d6361726f6c406578616d706c652e6e65742d2d616c696365c93c0a6b10000000050000007413baed305f28"
    "bd68c6fa8bcd12f393616c696365")
WRITTEN_AT = 0x6B0A3CC9 - 86400  # the vacation record expires one day later


def test_reads_pigeonholes_vacation_record(tmp_path: Path) -> None:
    path = tmp_path / ".dovecot.lda-dupes"
    path.write_bytes(DOVECOT_FILE)
    ident = vacation_id("Sender@Example.org", vacation_handle("I am away", "", "", False))
    assert DuplicateTracker(path, "alice", now=WRITTEN_AT + 60).seen(ident)
    assert not DuplicateTracker(path, "bob", now=WRITTEN_AT + 60).seen(ident)  # per user
    assert not DuplicateTracker(path, "alice", now=WRITTEN_AT + 2 * 86400).seen(ident)  # expired
    redirect = b"<m3@example.org>-alice@example.com-carol@example.net--"
    assert DuplicateTracker(path, "alice", now=WRITTEN_AT).seen(redirect)


def test_writes_what_it_reads_and_keeps_other_records(tmp_path: Path) -> None:
    path = tmp_path / ".dovecot.lda-dupes"
    path.write_bytes(DOVECOT_FILE)
    tracker = DuplicateTracker(path, "alice", now=WRITTEN_AT + 60)
    new = vacation_id("carol@example.net", "my-handle")
    tracker.mark(new, 3600)
    assert tracker.seen(new)
    assert tracker.seen(vacation_id("sender@example.org", vacation_handle("I am away", "", "", False)))
    assert path.read_bytes()[:4] == b"\x02\x00\x00\x00"
    assert not (tmp_path / ".dovecot.lda-dupes.lock").exists()


def test_duplicate_test_remembers(tmp_path: Path) -> None:
    tracker = DuplicateTracker(tmp_path / ".dovecot.lda-dupes", "alice", now=1_000_000)
    assert tracker.check_and_mark("\0<id@x>", 3600) is False
    assert tracker.check_and_mark("\0<id@x>", 3600) is True


def test_unknown_version_or_garbage_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / ".dovecot.lda-dupes"
    path.write_bytes(b"\x01\x00\x00\x00garbage")
    assert not DuplicateTracker(path, "alice").seen(b"x")
    path.write_bytes(DOVECOT_FILE[:-7])  # torn tail
    assert DuplicateTracker(path, "alice", now=WRITTEN_AT).seen(
        b"<m3@example.org>-alice@example.com-carol@example.net--")
