"""maa-index.structs: the append-only structure log beside maa-index.cache."""

from __future__ import annotations

import os

from maa_server.storage.index.cache import (
    append_structures,
    load_structures,
    rewrite_structures,
)
from maa_server.storage.interface import MessageStructure


def _s(n: int) -> MessageStructure:
    return MessageStructure(b'(NIL "s%d")' % n, b"(b)", b"(bs)", {"subject": f"s{n}"})


def test_missing_file_is_empty_and_clean(tmp_path):
    log = load_structures(str(tmp_path / "maa-index.structs"), 7)
    assert log.structures == {} and log.entries == 0 and log.clean


def test_appends_add_and_later_chunks_win(tmp_path):
    path = str(tmp_path / "maa-index.structs")
    rewrite_structures(path, 7, {1: _s(1), 2: _s(2)})
    append_structures(path, 7, {3: _s(3)})
    append_structures(path, 7, {2: _s(22)})
    log = load_structures(path, 7)
    assert log.structures == {1: _s(1), 2: _s(22), 3: _s(3)}
    assert log.entries == 4 and log.clean


def test_append_creates_the_file(tmp_path):
    path = str(tmp_path / "maa-index.structs")
    append_structures(path, 9, {5: _s(5)})
    assert load_structures(path, 9).structures == {5: _s(5)}


def test_other_uidvalidity_is_ignored(tmp_path):
    path = str(tmp_path / "maa-index.structs")
    rewrite_structures(path, 7, {1: _s(1)})
    log = load_structures(path, 8)
    assert log.structures == {} and not log.clean


def test_torn_last_chunk_is_dropped_and_marked_for_rewrite(tmp_path):
    path = str(tmp_path / "maa-index.structs")
    rewrite_structures(path, 7, {1: _s(1)})
    append_structures(path, 7, {2: _s(2)})
    size = os.path.getsize(path)
    os.truncate(path, size - 3)  # a crash in the middle of the append
    log = load_structures(path, 7)
    assert log.structures == {1: _s(1)} and not log.clean


def test_garbage_is_ignored(tmp_path):
    path = tmp_path / "maa-index.structs"
    path.write_bytes(b"garbage")
    assert load_structures(str(path), 7).structures == {}
