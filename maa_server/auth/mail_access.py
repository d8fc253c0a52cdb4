"""Whether a user may have mail access at all: Dovecot's check of the
userdb uid/gid (or mail_uid/mail_gid) against first_valid_uid..last_valid_uid
and first_valid_gid..last_valid_gid, made by the mail process, not by auth
(lib-storage/mail-storage-service.c service_parse_privileges). Used by the
protocols' login completion (one process) and by the privilege-separated
master before it starts a user's worker."""

from __future__ import annotations

import grp
import pwd
from typing import Any

from maa_server.auth.interface import UserInfo


def uid_refusal(user: UserInfo, config: Any) -> str:
    """Dovecot's check before dropping to the user's uid/gid
    (mail-storage-service.c): "" when allowed, else the error line."""
    uid = user.uid
    if uid is None:
        mail_uid = str(config.get("mail_uid") or "")
        if not mail_uid:
            # Dovecot's words (observed from 2.3.19, lib/restrict-access.c).
            return "Couldn't drop privileges: User is missing UID (see mail_uid setting)"
        uid = resolve_uid(mail_uid)
        if uid is None:
            return f"mail_uid: User doesn't exist: {mail_uid}"
    return _range_refusal(uid, user.gid, config)


def mail_access_refusal(user: UserInfo, config: Any) -> str:
    """The same check for a mail session that keeps the server's own uid
    (single-process mode): Dovecot's service_parse_privileges() checks the
    userdb uid/gid (or mail_uid/mail_gid) against first_valid_uid.. whether
    or not it runs as root; a user with neither is not checked."""
    uid = user.uid
    if uid is None and str(config.get("mail_uid") or ""):
        uid = resolve_uid(str(config.get("mail_uid")))
        if uid is None:
            return f"mail_uid: User doesn't exist: {config.get('mail_uid')}"
    gid = user.gid
    if gid is None and str(config.get("mail_gid") or ""):
        gid = resolve_gid(str(config.get("mail_gid")))
    return _range_refusal(uid, gid, config)


def _range_refusal(uid: int | None, gid: int | None, config: Any) -> str:
    first_uid = int(config.get("first_valid_uid") or 0)
    last_uid = int(config.get("last_valid_uid") or 0)
    first_gid = int(config.get("first_valid_gid") or 0)
    last_gid = int(config.get("last_valid_gid") or 0)
    if uid is not None and (uid < first_uid or (last_uid and uid > last_uid)):
        return (f"Mail access for users with UID {uid} not permitted "
                f"(see first_valid_uid in config file, uid from userdb lookup).")
    if gid is not None and (gid < first_gid or (last_gid and gid > last_gid)):
        return (f"Mail access for users with GID {gid} not permitted "
                f"(see first_valid_gid in config file, gid from userdb lookup).")
    return ""


def resolve_uid(name: str) -> int | None:
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def resolve_gid(name: str) -> int | None:
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None
