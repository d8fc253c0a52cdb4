"""Message commands: APPEND (MULTIAPPEND RFC 3502, APPENDUID RFC 4315), CLOSE,
UNSELECT (RFC 3691), EXPUNGE, UID EXPUNGE (RFC 4315), COPY, MOVE (RFC 6851),
STORE (with UNCHANGEDSINCE, RFC 7162 3.1.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from maa_server.protocols.imap import args as A
from maa_server.protocols.imap.errors import ImapCommandFailed, ImapParseError
from maa_server.protocols.imap.responses import (
    flag_list,
    ordered_flags,
    parse_date_time,
)
from maa_server.protocols.imap.sequence import format_uid_set, parse_sequence_set
from maa_server.protocols.imap.tokens import Arg, String
from maa_server.storage.interface import DELETED, Mailbox, NoSuchMailbox

if TYPE_CHECKING:
    from maa_server.protocols.imap.session import ImapSession


async def _open_target(s: ImapSession, wire: str) -> Mailbox:
    assert s.store is not None
    name = s.names.from_wire(wire)
    try:
        return await s.store.open_mailbox(name)
    except NoSuchMailbox:
        # RFC 3501 6.3.11 / 6.4.7: TRYCREATE tells the client to CREATE first.
        raise ImapCommandFailed(f"Mailbox doesn't exist: {wire}", "TRYCREATE") from None


def _parse_appends(rest: list[Arg]) -> list[tuple[list[str], float | None, bytes]]:
    """`[flags] [date-time] literal` repeated (MULTIAPPEND)."""
    out: list[tuple[list[str], float | None, bytes]] = []
    i = 0
    while i < len(rest):
        flags: list[str] = []
        date: float | None = None
        if isinstance(rest[i], list):
            flags = A.flags(rest[i])
            i += 1
        candidate = rest[i] if i < len(rest) else None
        if isinstance(candidate, String) and not candidate.literal:
            date = parse_date_time(candidate.text())
            if date is None:
                raise ImapParseError("Invalid internal date")
            i += 1
        if i >= len(rest):
            raise ImapParseError("Missing message literal")
        msg = rest[i]
        if not isinstance(msg, String):
            raise ImapParseError("Invalid arguments")
        out.append((flags, date, msg.value))
        i += 1
    return out


async def cmd_append(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    if len(args) < 2:
        raise ImapParseError("Invalid arguments")
    wire = A.astring(args[0])
    messages = _parse_appends(args[1:])
    box = await _open_target(s, wire)
    for _, _, data in messages:
        if not data:
            raise ImapCommandFailed("Can't save a zero byte message.")
    uids = []
    for flags, date, data in messages:
        uids.append(await box.append(data, flags, date))
    return f"[APPENDUID {box.uidvalidity} {format_uid_set(sorted(uids))}] Append completed."


async def cmd_close(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    from maa_server.protocols.imap.session import AUTHENTICATED

    # Arguments are ignored, as Dovecot's cmd-close.c does.
    sel = s.selected
    assert sel is not None
    if not sel.read_only:
        # RFC 3501 6.4.2: expunge silently.
        removed = await sel.mailbox.expunge()
        s.stats.expunged += len(removed)
    s.selected = None
    s.state = AUTHENTICATED
    return "Close completed."


async def cmd_unselect(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    from maa_server.protocols.imap.session import AUTHENTICATED

    # Arguments are ignored (cmd-unselect.c).
    s.selected = None
    s.state = AUTHENTICATED
    return "Unselect completed."


async def cmd_expunge(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    sel = s.selected
    assert sel is not None
    uids: list[int] | None = None
    if uid:
        A.count(args, 1)
        seqset = parse_sequence_set(A.atom(args[0]))
        uids = [m.uid for _, m in sel.select(seqset, uid=True)]
    # EXPUNGE ignores arguments (cmd-expunge.c).
    if sel.read_only or (uids is not None and not uids):
        return "Expunge completed."  # EXAMINE: nothing to do, Dovecot says OK
    removed = await sel.mailbox.expunge(uids)
    s.stats.expunged += len(removed)
    # With QRESYNC the tagged OK gets the new HIGHESTMODSEQ from the
    # session's sync step (SelectedMailbox.qresync_tagline), as in Dovecot.
    return "Expunge completed."


async def cmd_copy(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    return await _copy_or_move(s, args, uid, move=False)


async def cmd_move(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    return await _copy_or_move(s, args, uid, move=True)


async def _copy_or_move(s: ImapSession, args: list[Arg], uid: bool, *, move: bool) -> str | None:
    set_text, wire = A.string_args(args, 2)
    sel = s.selected
    assert sel is not None
    seqset = parse_sequence_set(set_text)
    chosen = sel.select(seqset, uid)
    if not chosen:  # before the target is looked at, as Dovecot (observed)
        return "No messages found."
    dest = await _open_target(s, wire)
    if move and sel.read_only:
        raise ImapCommandFailed("Mailbox is read-only.")
    src_uids = [m.uid for _, m in chosen]
    if move and dest is sel.mailbox:
        raise ImapCommandFailed("Can't move to the same mailbox.")
    if move:
        pairs = await sel.mailbox.move_to(src_uids, dest)
    else:
        pairs = await sel.mailbox.copy_to(src_uids, dest)
    if _is_trash(s, s.names.from_wire(wire)):
        s.stats.trashed += len(pairs)
    if not pairs:
        raise ImapCommandFailed("Some of the requested messages no longer exist.",
                                "EXPUNGEISSUED")
    code = (f"COPYUID {dest.uidvalidity} {format_uid_set([a for a, _ in pairs])} "
            f"{format_uid_set([b for _, b in pairs])}")
    if move:
        # RFC 6851 4.3: COPYUID goes in an untagged OK before the expunges.
        s.untagged(f"OK [{code}] Moved UIDs.")
        s.stats.expunged += len(pairs)
        return "Move completed."
    return f"[{code}] Copy completed."


def _is_trash(s: ImapSession, name: str) -> bool:
    return any(child.name == name and "\\Trash" in child.get("special_use", "")
               for ns in s.ctx.config.namespaces for child in ns.children)


STORE_MODES = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}


async def cmd_store(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    if len(args) < 2:
        raise ImapParseError("Invalid arguments")
    sel = s.selected
    assert sel is not None
    seqset = parse_sequence_set(A.atom(args[0]))
    rest = list(args[1:])
    unchanged_since: int | None = None
    if isinstance(rest[0], list):  # RFC 7162: (UNCHANGEDSINCE n)
        mods = A.plist(rest.pop(0))
        if len(mods) != 2 or A.atom(mods[0]).upper() != "UNCHANGEDSINCE":
            raise ImapParseError("Invalid STORE modifiers")
        unchanged_since = A.number(mods[1], bits=63)
        s.enabled.add("CONDSTORE")  # RFC 7162 3.1: implicit enable
    if not rest:
        raise ImapParseError("Invalid arguments")
    item = A.atom(rest[0]).upper()
    silent = item.endswith(".SILENT")
    mode = STORE_MODES.get(item[:-7] if silent else item)
    if mode is None:
        raise ImapParseError("Invalid arguments")  # Dovecot's text (cmd-store.c)
    # STORE with no flags at all is accepted by Dovecot (observed): an empty list.
    flags = A.flags(rest[1] if len(rest) == 2 else rest[1:]) if len(rest) > 1 else []
    chosen = sel.select(seqset, uid)
    if sel.read_only:
        return "Store ignored with read-only mailbox."  # Dovecot's OK (cmd-store.c)
    if not chosen:
        return "Store completed."
    before = {m.uid: m for _, m in chosen}
    changed, failed = await sel.mailbox.store_flags(list(before), flags, mode, unchanged_since)
    sel.replace_infos(changed)
    for line in sel.announce_keywords(changed):  # a new keyword: FLAGS first, as Dovecot
        s.write(line)
    s.stats.deleted += sum(1 for m in changed
                           if DELETED in m.flags and DELETED not in before[m.uid].flags)
    changed_uids = {m.uid for m in changed}
    for seq, old in chosen:
        info = sel.infos[seq - 1]
        if old.uid in failed:
            continue
        # RFC 7162 3.1.3: with CONDSTORE even .SILENT reports the new MODSEQ
        # of changed messages; otherwise FETCH FLAGS unless .SILENT.
        # Dovecot reports only messages whose flags really changed.
        if old.uid not in changed_uids or (silent and not s.condstore):
            continue
        # Dovecot's order: UID (always with QRESYNC), MODSEQ, FLAGS.
        items = []
        if uid or s.qresync:
            items.append(f"UID {info.uid}")
        if s.condstore:
            items.append(f"MODSEQ ({info.modseq})")
            sel.note_modseq(info.modseq)
        if not silent:
            items.append("FLAGS " + flag_list(ordered_flags(
                info.flags, info.uid in sel.recent)).decode())
        s.write(f"* {seq} FETCH ({' '.join(items)})\r\n".encode("utf-8", "surrogateescape"))
    if failed:
        nums = sorted(failed) if uid else sorted(sel.seq_of(u) for u in failed)
        return f"[MODIFIED {format_uid_set(nums)}] Conditional store failed."
    return "Store completed."


__all__ = [
    "cmd_append",
    "cmd_close",
    "cmd_copy",
    "cmd_expunge",
    "cmd_move",
    "cmd_store",
    "cmd_unselect",
]
