"""open_mail_store(cfg, user): the user's MailStore, built once per process.

Resolves the location from the userdb `mail` field or `mail_location` (and the
inbox namespace's `location`), with the user's home and %-variables; takes the
hierarchy separator and the `mailbox NAME { special_use auto }` blocks from
the inbox namespace (spec 2.4, 2.5) and the Maildir settings of spec 2.10.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from maa_server.auth.interface import UserInfo
from maa_server.storage.interface import MailStore
from maa_server.storage.location import parse_mail_location
from maa_server.storage.maildir.store import AutoMailbox, MaildirStore

# Weak: a store lives while a session (or a pending cache write) uses it, so
# a long-running process does not keep every user it ever served in memory.
_stores: weakref.WeakValueDictionary[tuple[str, str, str], MaildirStore] = weakref.WeakValueDictionary()
_opening: dict[tuple[str, str, str], asyncio.Future[MaildirStore]] = {}


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


async def open_mail_store(cfg: Any, user: UserInfo) -> MailStore:
    """The user's store (cached per user and location in this process).
    Raises LocationError when the location cannot be used."""
    namespace = _inbox_namespace(cfg)
    spec = user.mail or (namespace.get("location", "") if namespace is not None else "") \
        or str(_setting(cfg, "mail_location", ""))
    separator = user.extra.get("namespace/inbox/separator", "") or (
        namespace.get("separator", "") if namespace is not None else "")
    key = (user.username, spec, separator)
    store = _stores.get(key)
    if store is not None:
        return store
    pending = _opening.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[MaildirStore] = asyncio.get_running_loop().create_future()
    _opening[key] = future
    try:
        location = parse_mail_location(spec, user.username, user.home, None)
        store = MaildirStore(
            user.username,
            location,
            separator=separator or None,
            fsync=str(_setting(cfg, "mail_fsync", "optimized")),
            hardlinks=_bool(_setting(cfg, "maildir_copy_with_hardlinks", True)),
            auto_mailboxes=_auto_mailboxes(namespace),
            tmp_scan_interval=_seconds(_setting(cfg, "mail_temp_scan_interval", 7 * 86400.0), 7 * 86400.0),
            max_lock_timeout=_seconds(_setting(cfg, "mail_max_lock_timeout", 0.0), 0.0),
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
