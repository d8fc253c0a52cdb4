"""The per-mailbox index cache: `maa-index.cache` and `maa-index.structs`.

Files (never directories: with LAYOUT=fs a directory would be listed as a
folder) holding what is slow to work out again. `maa-index.cache`: per
message uid, file name, mtime, sizes and modseq; HIGHESTMODSEQ (CONDSTORE
needs it across restarts, RFC 7162 section 3.1.2). `maa-index.structs`: the
parsed ENVELOPE/BODYSTRUCTURE, append-only like Dovecot's
dovecot.index.cache, because rewriting every structure of a 100,000-message
folder after each change would cost seconds (profile: 0.4 s for 10,000).
Dovecot ignores both names. Deleting them loses nothing but time; a corrupt
or foreign-version file is ignored and rewritten.

Encoding: an 8-byte magic with the version, then `marshal` of plain tuples
(marshal cannot run code when loaded, unlike pickle). The cache file is
written to a temporary name and renamed, so a reader never sees half a
file; the structures file is a header then length-prefixed chunks, and a
torn last chunk (a crash mid-append) is dropped when read.
"""

from __future__ import annotations

import marshal
import os
import struct
from dataclasses import dataclass, field

from maa_server.storage.interface import MessageStructure

CACHE_NAME = "maa-index.cache"
STRUCTS_NAME = "maa-index.structs"
MAGIC = b"MAAIDX\x00\x04"
STRUCTS_MAGIC = b"MAASTR\x00\x01"

Row = tuple[int, str, str, float, int, int, int]  # uid, base, name, mtime, size, vsize, modseq


@dataclass(slots=True)
class CacheContent:
    uidvalidity: int
    highest_modseq: int
    next_uid: int
    last_tmp_scan: float = 0.0
    rows: list[Row] = field(default_factory=list)
    structures: dict[int, MessageStructure] = field(default_factory=dict)
    # Keywords past the 26 dovecot-keywords letters: uid -> names, and all names.
    extra: dict[int, tuple[str, ...]] = field(default_factory=dict)
    extra_names: list[str] = field(default_factory=list)


def _valid_row(row: object) -> bool:
    return (isinstance(row, tuple) and len(row) == 7 and isinstance(row[0], int) and isinstance(row[1], str)
            and isinstance(row[2], str) and isinstance(row[3], (int, float)) and isinstance(row[4], int)
            and isinstance(row[5], int) and isinstance(row[6], int))


def _structure(value: object) -> MessageStructure | None:
    if not (isinstance(value, tuple) and len(value) == 4):
        return None
    env, body, bstruct, headers = value
    if not (isinstance(env, bytes) and isinstance(body, bytes) and isinstance(bstruct, bytes)
            and isinstance(headers, dict)):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        return None
    return MessageStructure(env, body, bstruct, dict(headers))


def load_cache(path: str) -> CacheContent | None:
    """The cache, or None when missing, foreign or damaged."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
        return None
    if not raw.startswith(MAGIC):
        return None
    try:
        payload = marshal.loads(raw[len(MAGIC):])
    except (EOFError, ValueError, TypeError):
        return None
    if not (isinstance(payload, tuple) and len(payload) == 8):
        return None
    uidvalidity, highest, next_uid, tmp_scan, rows, structures, extra, extra_names = payload
    if not (isinstance(extra, dict) and isinstance(extra_names, list)
            and all(isinstance(k, int) and isinstance(v, tuple) and all(isinstance(n, str) for n in v)
                    for k, v in extra.items())
            and all(isinstance(n, str) for n in extra_names)):
        return None
    if not (isinstance(uidvalidity, int) and isinstance(highest, int) and isinstance(next_uid, int)
            and isinstance(tmp_scan, (int, float)) and isinstance(rows, list) and isinstance(structures, dict)):
        return None
    # Checked cheaply here; a wrong field type fails when used and the
    # caller then rebuilds (load errors are never trusted).
    if rows and not _valid_row(rows[0]) or not all(type(row) is tuple and len(row) == 7 for row in rows):
        return None
    parsed: dict[int, MessageStructure] = {}
    for uid, value in structures.items():
        one = _structure(value)
        if not isinstance(uid, int) or one is None:
            return None
        parsed[uid] = one
    return CacheContent(uidvalidity, highest, next_uid, float(tmp_scan), rows, parsed, extra, extra_names)


def save_cache(path: str, content: CacheContent, mode: int = 0o600) -> None:
    """Write the cache file (the structures go to the structures file)."""
    no_structures: dict[int, object] = {}  # the v3 slot, kept for the shape
    payload = (content.uidvalidity, content.highest_modseq, content.next_uid, content.last_tmp_scan,
               content.rows, no_structures, content.extra, content.extra_names)
    data = MAGIC + marshal.dumps(payload)
    tmp = f"{path}.tmp.{os.getpid()}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def structs_path(cache_path: str) -> str:
    return os.path.join(os.path.dirname(cache_path), STRUCTS_NAME)


@dataclass(slots=True)
class StructureLog:
    """What maa-index.structs holds for one UIDVALIDITY."""

    structures: dict[int, MessageStructure]
    entries: int  # chunks' entries in the file, dead ones included
    clean: bool  # False: damaged tail, rewrite before appending


def _chunk(structures: dict[int, MessageStructure]) -> bytes:
    payload = marshal.dumps({uid: (s.envelope, s.body, s.bodystructure, dict(s.headers))
                             for uid, s in structures.items()})
    return struct.pack(">I", len(payload)) + payload


def load_structures(path: str, uidvalidity: int) -> StructureLog:
    """The structures file's content for `uidvalidity` (empty when missing,
    foreign or for another UIDVALIDITY; later chunks win)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
        return StructureLog({}, 0, True)
    head = len(STRUCTS_MAGIC) + 8
    if not raw.startswith(STRUCTS_MAGIC) or len(raw) < head \
            or struct.unpack(">Q", raw[len(STRUCTS_MAGIC):head])[0] != uidvalidity:
        return StructureLog({}, 0, False)
    found: dict[int, MessageStructure] = {}
    entries = 0
    pos = head
    while pos < len(raw):
        if pos + 4 > len(raw):
            return StructureLog(found, entries, False)
        (size,) = struct.unpack(">I", raw[pos:pos + 4])
        end = pos + 4 + size
        if end > len(raw):
            return StructureLog(found, entries, False)
        try:
            chunk = marshal.loads(raw[pos + 4:end])
        except (EOFError, ValueError, TypeError):
            return StructureLog(found, entries, False)
        if not isinstance(chunk, dict):
            return StructureLog(found, entries, False)
        for uid, value in chunk.items():
            parsed = _structure(value)
            if not isinstance(uid, int) or parsed is None:
                return StructureLog(found, entries, False)
            found[uid] = parsed
        entries += len(chunk)
        pos = end
    return StructureLog(found, entries, True)


def append_structures(path: str, uidvalidity: int, structures: dict[int, MessageStructure],
                      mode: int = 0o600) -> None:
    """Add structures at the end (creating the file with its header)."""
    if not structures:
        return
    data = _chunk(structures)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        rewrite_structures(path, uidvalidity, structures, mode)
        return
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def rewrite_structures(path: str, uidvalidity: int, structures: dict[int, MessageStructure],
                       mode: int = 0o600) -> None:
    """The whole file anew (first write, damage, too many dead entries)."""
    data = STRUCTS_MAGIC + struct.pack(">Q", uidvalidity) + (_chunk(structures) if structures else b"")
    tmp = f"{path}.tmp.{os.getpid()}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)
