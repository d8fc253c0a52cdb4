"""open_mail_store(cfg, user): the user's MailStore, built once per process.

Resolves the location from the userdb `mail` field or `mail_location` (and the
inbox namespace's `location`), with the user's home and %-variables; takes the
hierarchy separator and the `mailbox NAME { special_use auto }` blocks from
the inbox namespace (spec 2.4, 2.5) and the Maildir settings of spec 2.10.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, NamedTuple

from maa_server.auth.interface import UserInfo
from maa_server.storage.interface import MailStore
from maa_server.storage.location import MailLocation, parse_mail_location
from maa_server.storage.maildir.store import AutoMailbox, MaildirStore


def _setting(cfg: Any, name: str, default: Any) -> Any:
    try:
        value = cfg.get(name)
    except (KeyError, AttributeError):
        return default
    return default if value is None else value


def _inbox_namespace(cfg: Any) -> Any:
    namespaces = list(getattr(cfg, "namespaces", None) or [])
    for ns in namespaces:
        if ns.get("inbox", "no").lower() in ("yes", "y", "1", "true"):
            return ns
    return namespaces[0] if namespaces else None


def _auto_mailboxes(namespace: Any) -> list[AutoMailbox]:
    boxes: list[AutoMailbox] = []
    if namespace is None:
        return boxes
    for child in namespace.children:
        if child.kind != "mailbox":
            continue
        name = child.get("name", "") or child.name
        special = frozenset(word for word in child.get("special_use", "").split() if word)
        auto = child.get("auto", "no").strip().lower() or "no"
        if auto not in ("no", "create", "subscribe"):
            auto = "no"
        boxes.append(AutoMailbox(name, special, auto))
    return boxes


def _seconds(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "y", "1", "true")


class StoreKey(NamedTuple):
    """What makes two opens the same store: the resolved location (after home
    and %-variables), the identity that owns the files, and the settings the
    store was built with. A user name alone is not enough: the same name from
    two userdbs, or a home changed by a reload, is another Maildir."""

    username: str
    uid: int | None
    gid: int | None
    location: MailLocation
    separator: str
    fsync: str
    hardlinks: bool
    auto_mailboxes: tuple[AutoMailbox, ...]
    tmp_scan_interval: float
    max_lock_timeout: float


# Weak: a store lives while a session (or a pending cache write) uses it, so
# a long-running process does not keep every user it ever served in memory.
_stores: weakref.WeakValueDictionary[StoreKey, MaildirStore] = weakref.WeakValueDictionary()
_opening: dict[StoreKey, asyncio.Future[MaildirStore]] = {}


def store_key(cfg: Any, user: UserInfo) -> StoreKey:
    """The cache key of `user`'s store under `cfg` (raises LocationError)."""
    namespace = _inbox_namespace(cfg)
    spec = user.mail or (namespace.get("location", "") if namespace is not None else "") \
        or str(_setting(cfg, "mail_location", ""))
    separator = user.extra.get("namespace/inbox/separator", "") or (
        namespace.get("separator", "") if namespace is not None else "")
    return StoreKey(
        username=user.username,
        uid=user.uid,
        gid=user.gid,
        location=parse_mail_location(spec, user.username, user.home, None),
        separator=separator,
        fsync=str(_setting(cfg, "mail_fsync", "optimized")),
        hardlinks=_bool(_setting(cfg, "maildir_copy_with_hardlinks", True)),
        auto_mailboxes=tuple(_auto_mailboxes(namespace)),
        tmp_scan_interval=_seconds(_setting(cfg, "mail_temp_scan_interval", 7 * 86400.0), 7 * 86400.0),
        max_lock_timeout=_seconds(_setting(cfg, "mail_max_lock_timeout", 0.0), 0.0),
    )


async def open_mail_store(cfg: Any, user: UserInfo) -> MailStore:
    """The user's store, cached per resolved location in this process.
    Raises LocationError when the location cannot be used."""
    key = store_key(cfg, user)
    store = _stores.get(key)
    if store is not None:
        return store
    pending = _opening.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[MaildirStore] = asyncio.get_running_loop().create_future()
    _opening[key] = future
    try:
        store = MaildirStore(
            user.username,
            key.location,
            separator=key.separator or None,
            fsync=key.fsync,
            hardlinks=key.hardlinks,
            auto_mailboxes=list(key.auto_mailboxes),
            tmp_scan_interval=key.tmp_scan_interval,
            max_lock_timeout=key.max_lock_timeout,
        )
        await store.prepare()
        _stores[key] = store
        future.set_result(store)
        return store
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()
        raise
    finally:
        del _opening[key]


async def close_all_stores() -> None:
    """Flush every index cache (graceful shutdown)."""
    for store in list(_stores.values()):
        await store.close()


def forget_stores() -> None:
    """Drop the per-process cache (tests; a worker that changes user)."""
    _stores.clear()
