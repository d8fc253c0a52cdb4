"""Dropping root for good, as Dovecot's mail processes and dovecot-lda do
before they touch a user's mail (lib-storage/mail-storage-service.c
service_drop_privileges; lib/restrict-access.c)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from maa_server.auth.interface import UserInfo


def drop_privileges(uid: int, gid: int, groups: list[int]) -> None:
    """setgroups, setgid, setuid: real, effective and saved ids, so root
    cannot be regained. Raises SystemExit if the kernel did not comply."""
    if os.getuid() != 0 and os.geteuid() != 0:
        return  # not root: nothing to drop
    os.setgroups(groups or [gid])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise SystemExit(f"privilege drop to {uid}:{gid} failed")
    with contextlib.suppress(PermissionError):
        os.setuid(0)
        raise SystemExit("privilege drop failed: root could be regained")


def drop_to_user(user: UserInfo, config: Any) -> str:
    """For a process started as root that serves one user (maa-lda -d):
    Dovecot's uid/gid checks, every module loaded (the interpreter's files
    may be unreadable to the user), then the drop. Returns Dovecot's error
    line when the user may not have mail access, "" when done."""
    from maa_server.daemon.privsep.pool import WorkerRefused, credentials
    from maa_server.daemon.privsep.worker import preload, preload_names

    try:
        uid, gid, groups = credentials(user, config)
    except WorkerRefused as exc:
        return str(exc)
    preload(preload_names())
    drop_privileges(uid, gid, groups)
    return ""
