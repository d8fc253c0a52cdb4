"""The per-mailbox index cache file `maa-index.cache`.

A single file (never a directory: with LAYOUT=fs a directory would be listed
as a folder) holding what is slow to work out again: per message uid, file
name, mtime, sizes and modseq; HIGHESTMODSEQ (CONDSTORE needs it across
restarts, RFC 7162 section 3.1.2); and the parsed ENVELOPE/BODYSTRUCTURE.
Dovecot ignores the name. Deleting it loses nothing but time; a corrupt or
foreign-version file is ignored and rewritten.

Encoding: an 8-byte magic with the version, then `marshal` of plain tuples
(marshal cannot run code when loaded, unlike pickle). Written to a temporary
name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import marshal
import os
from dataclasses import dataclass, field

from maa_server.storage.interface import MessageStructure

CACHE_NAME = "maa-index.cache"
MAGIC = b"MAAIDX\x00\x03"

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
        struct = _structure(value)
        if not isinstance(uid, int) or struct is None:
            return None
        parsed[uid] = struct
    return CacheContent(uidvalidity, highest, next_uid, float(tmp_scan), rows, parsed, extra, extra_names)


def save_cache(path: str, content: CacheContent, mode: int = 0o600) -> None:
    structures = {uid: (s.envelope, s.body, s.bodystructure, dict(s.headers))
                  for uid, s in content.structures.items()}
    payload = (content.uidvalidity, content.highest_modseq, content.next_uid, content.last_tmp_scan,
               content.rows, structures, content.extra, content.extra_names)
    data = MAGIC + marshal.dumps(payload)
    tmp = f"{path}.tmp.{os.getpid()}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.rename(tmp, path)
