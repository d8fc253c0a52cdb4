"""UIDVALIDITY allocation via `dovecot-uidvalidity` and its marker file.

Dovecot source: src/lib-storage/mailbox-uidvalidity.c. Spec 5.9. Blocking:
run in a worker thread. The marker `dovecot-uidvalidity.<8 hex>` is renamed
to the next value, which makes the increment atomic between processes.
"""

from __future__ import annotations

import os
import time

from maa_server.storage.maildir.dotlock import write_all

_NAME = "dovecot-uidvalidity"


def _markers(control_dir: str) -> list[int]:
    found: list[int] = []
    try:
        names = os.listdir(control_dir)
    except FileNotFoundError:
        return found
    for name in names:
        if name.startswith(_NAME + ".") and len(name) == len(_NAME) + 9:
            try:
                found.append(int(name[len(_NAME) + 1:], 16))
            except ValueError:
                continue
    return sorted(found)


def _write_value(control_dir: str, value: int) -> None:
    path = os.path.join(control_dir, _NAME)
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, f"{value:08x}".encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _create_marker(control_dir: str, value: int) -> bool:
    path = os.path.join(control_dir, f"{_NAME}.{value:08x}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def allocate_uidvalidity(control_dir: str) -> int:
    """The next UIDVALIDITY of this mail root (first one: the current time)."""
    os.makedirs(control_dir, exist_ok=True)
    path = os.path.join(control_dir, _NAME)
    try:
        with open(path, "rb") as fh:
            current = int(fh.read(16).decode("ascii", "replace").strip() or "0", 16)
    except (FileNotFoundError, ValueError):
        current = 0
    markers = _markers(control_dir)
    if len(markers) > 1:
        # The largest wins; the others are leftovers.
        for old in markers[:-1]:
            try:
                os.unlink(os.path.join(control_dir, f"{_NAME}.{old:08x}"))
            except FileNotFoundError:
                pass
        markers = markers[-1:]
    if markers:
        current = max(current, markers[0])
    if current == 0:
        value = int(time.time()) & 0xFFFFFFFF
        if _create_marker(control_dir, value):
            _write_value(control_dir, value)
            return value
        current = value
    for _ in range(10):
        src = os.path.join(control_dir, f"{_NAME}.{current:08x}")
        nxt = (current + 1) & 0xFFFFFFFF or 1
        try:
            os.rename(src, os.path.join(control_dir, f"{_NAME}.{nxt:08x}"))
        except FileNotFoundError:
            # Someone else moved it on; pick up the newest marker and retry.
            markers = _markers(control_dir)
            if not markers:
                if _create_marker(control_dir, nxt):
                    _write_value(control_dir, nxt)
                    return nxt
                current = nxt
            else:
                current = markers[-1]
            continue
        _write_value(control_dir, nxt)
        return nxt
    # Still racing after 10 tries: fall back to a fresh time-based value.
    value = max(int(time.time()), current + 1) & 0xFFFFFFFF
    _create_marker(control_dir, value)
    _write_value(control_dir, value)
    return value
