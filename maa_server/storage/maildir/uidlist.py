"""dovecot-uidlist (format versions 3 and 1): parse and serialise, no I/O.

Dovecot source: src/lib-storage/index/maildir/maildir-uidlist.c. Spec 5.5.
The file is the authority on UIDs and UIDVALIDITY; these functions turn its
bytes into `UidList` and back, byte for byte as Dovecot writes them.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass, field


class UidListCorrupt(ValueError):
    """The file cannot be trusted (Dovecot deletes and rebuilds it)."""


@dataclass(slots=True)
class UidRecord:
    uid: int
    base: str
    # Extension fields in file order: key letter -> value (S, W, P, O, G, ...).
    ext: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class UidList:
    version: int = 3
    uidvalidity: int = 0
    next_uid: int = 1  # the header's N
    guid: str = ""
    extra_header: list[tuple[str, str]] = field(default_factory=list)
    records: dict[str, UidRecord] = field(default_factory=dict)  # base -> record, UID order
    lines_read: int = 0  # record lines seen (for the 75 % compaction rule)
    needs_rewrite: bool = False  # v1, missing G, duplicates, dropped fields

    @property
    def effective_next_uid(self) -> int:
        """max(N, highest UID + 1): lines are appended without touching N."""
        highest = self.highest_uid
        return max(self.next_uid, highest + 1)

    @property
    def highest_uid(self) -> int:
        if not self.records:
            return 0
        return next(reversed(self.records.values())).uid


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def parse_header(line: str) -> UidList:
    parts = line.split(" ")
    if not parts or not parts[0].isdigit():
        raise UidListCorrupt("bad header")
    version = int(parts[0])
    result = UidList(version=version)
    if version == 1:
        # "1 <uidvalidity> <nextuid>" (Courier-compatible, spec 5.5).
        if len(parts) < 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise UidListCorrupt("bad v1 header")
        result.uidvalidity = int(parts[1])
        result.next_uid = int(parts[2])
        result.needs_rewrite = True
        return result
    if version != 3:
        raise UidListCorrupt(f"unsupported version {version}")
    for part in parts[1:]:
        if not part:
            continue
        key, value = part[0], part[1:]
        if key == "V":
            if not value.isdigit():
                raise UidListCorrupt("bad V")
            result.uidvalidity = int(value)
        elif key == "N":
            if not value.isdigit():
                raise UidListCorrupt("bad N")
            result.next_uid = int(value)
        elif key == "G":
            result.guid = value
        else:
            result.extra_header.append((key, value))
    if result.uidvalidity == 0 or result.next_uid == 0:
        raise UidListCorrupt("missing V or N")
    if not result.guid:
        result.needs_rewrite = True
    return result


def parse_records(uidlist: UidList, text: str) -> None:
    """Add the record lines of `text` (complete lines only) to `uidlist`.
    Used for the whole body and for lines appended since the last read."""
    last_uid = uidlist.highest_uid
    for line in text.split("\n"):
        if not line:
            continue
        uidlist.lines_read += 1
        if uidlist.version == 1:
            uid_text, _, base = line.partition(" ")
            ext: dict[str, str] = {}
        else:
            head, sep, base = line.partition(" :")
            if not sep:
                # "<uid> :name" always has " :"; a bare "<uid>:name" is broken.
                raise UidListCorrupt(f"bad line {line!r}")
            uid_text, _, fields = head.partition(" ")
            ext = {}
            for item in fields.split(" "):
                if not item:
                    continue
                if "A" <= item[0] <= "Z":
                    ext[item[0]] = item[1:]
                else:
                    # Dovecot: "Invalid extension record, removing".
                    uidlist.needs_rewrite = True
        if not uid_text.isdigit() or int(uid_text) == 0:
            raise UidListCorrupt(f"bad uid in {line!r}")
        uid = int(uid_text)
        if uid <= last_uid:
            raise UidListCorrupt("UIDs not ordered")
        if not base or "/" in base:
            uidlist.needs_rewrite = True
            continue
        base = base.partition(":")[0] if uidlist.version == 1 else base
        if base in uidlist.records:
            # "Duplicate file entry": the later line wins; rewrite.
            del uidlist.records[base]
            uidlist.needs_rewrite = True
        uidlist.records[base] = UidRecord(uid, base, ext)
        last_uid = uid


def parse_uidlist(data: bytes) -> UidList:
    """Parse a complete file. An incomplete last line (a writer crashed
    mid-append) is ignored, as Dovecot's line reader ignores it."""
    text = _decode(data)
    header_line, nl, body = text.partition("\n")
    if not nl:
        raise UidListCorrupt("no header line")
    result = parse_header(header_line)
    if not body.endswith("\n") and "\n" in body:
        body = body[: body.rindex("\n") + 1]
    elif not body.endswith("\n"):
        body = ""
    parse_records(result, body)
    return result


def format_header(uidlist: UidList) -> bytes:
    parts = [f"3 V{uidlist.uidvalidity} N{uidlist.next_uid} G{uidlist.guid}"]
    parts.extend(f"{key}{value}" for key, value in uidlist.extra_header)
    return _encode(" ".join(parts) + "\n")


def format_record(record: UidRecord) -> bytes:
    fields = "".join(f" {key}{value}" for key, value in record.ext.items())
    return _encode(f"{record.uid}{fields} :{record.base}\n")


def format_uidlist(uidlist: UidList, update_next: bool = True) -> bytes:
    """A full rewrite: header (N brought up to date, as Dovecot's rewrite
    does) then every record."""
    if update_next:
        uidlist.next_uid = uidlist.effective_next_uid
    out = [format_header(uidlist)]
    out.extend(format_record(rec) for rec in uidlist.records.values())
    return b"".join(out)


def generate_guid() -> str:
    """A 128-bit mailbox GUID in Dovecot's shape (src/lib/guid.c guid_128_generate:
    nanoseconds, seconds, pid, then a host hash), as 32 lowercase hex digits."""
    now = time.time_ns()
    secs, nsecs = divmod(now, 1_000_000_000)
    host = socket.gethostname().encode()
    host_hash = 0
    for byte in host:
        host_hash = (host_hash * 31 + byte) & 0xFFFFFFFF
    raw = struct.pack("<IIHH", nsecs, secs & 0xFFFFFFFF, os.getpid() & 0xFFFF, 0) + struct.pack(">I", host_hash)
    # Mix in randomness in the low nanosecond bits for uniqueness across threads.
    rand = int.from_bytes(os.urandom(2), "little")
    raw = bytes([raw[0] ^ (rand & 0xFF), raw[1] ^ (rand >> 8)]) + raw[2:]
    return raw.hex()
