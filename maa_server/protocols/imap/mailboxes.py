"""Mailbox commands: SELECT/EXAMINE (with CONDSTORE/QRESYNC parameters,
RFC 7162 3.1.8, 3.2.5), CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
STATUS (RFC 3501 6.3; STATUS=SIZE RFC 8438) and NAMESPACE (RFC 2342).
LIST and LSUB live in listing.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from maa_server.protocols.imap import args as A
from maa_server.protocols.imap.errors import ImapCommandFailed, ImapParseError
from maa_server.protocols.imap.responses import (
    flag_list,
    mailbox_name,
    ordered_flags,
    quoted_or_literal,
)
from maa_server.protocols.imap.selected import SelectedMailbox
from maa_server.protocols.imap.sequence import (
    STAR,
    SequenceSet,
    format_uid_set,
    parse_sequence_set,
)
from maa_server.protocols.imap.tokens import Arg
from maa_server.storage.interface import MailboxError, MailboxStatus, NoSuchMailbox

if TYPE_CHECKING:
    from maa_server.protocols.imap.session import ImapSession



def _not_found(wire: str) -> ImapCommandFailed:
    return ImapCommandFailed(f"Mailbox doesn't exist: {wire}", "NONEXISTENT")


async def cmd_select(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    return await _select(s, args, read_only=False)


async def cmd_examine(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    return await _select(s, args, read_only=True)


async def _select(s: ImapSession, args: list[Arg], *, read_only: bool) -> str | None:
    from maa_server.protocols.imap.session import AUTHENTICATED, SELECTED

    had_selected = s.selected is not None
    s.selected = None
    s.state = AUTHENTICATED
    if had_selected:
        # RFC 7162 3.2.11: the old mailbox's notifications end here. Dovecot
        # closes it before it looks at the arguments (cmd-select.c), and
        # says so whether or not CONDSTORE/QRESYNC is on.
        s.untagged("OK [CLOSED] Previous mailbox closed.")
    if not args:
        raise ImapParseError("Invalid arguments")
    wire = A.astring(args[0])
    qresync: tuple[int, int, list[Arg]] | None = None
    if len(args) >= 2 and isinstance(args[1], list):  # other extra arguments are ignored
        for i, param in enumerate(args[1]):
            if isinstance(param, list):
                continue
            name = A.atom(param).upper()
            if name == "CONDSTORE":
                s.enabled.add("CONDSTORE")  # RFC 7162 3.1.8
            elif name == "QRESYNC":
                if "QRESYNC" not in s.enabled:
                    raise ImapParseError("QRESYNC not enabled")
                rest = args[1]
                if i + 1 >= len(rest):
                    raise ImapParseError("Missing QRESYNC parameters")
                q = A.plist(rest[i + 1])
                if len(q) < 2:
                    raise ImapParseError("Invalid QRESYNC parameters")
                qresync = (A.number(q[0], nonzero=True), A.number(q[1], bits=63), q[2:])
                _check_qresync_sets(q[2:])
            else:
                # Dovecot's text, copied from FETCH in its cmd-select.c.
                raise ImapParseError("Unknown FETCH modifier")
    name = s.names.from_wire(wire)
    assert s.store is not None
    try:
        box = await s.store.open_mailbox(name)
    except NoSuchMailbox:
        raise ImapCommandFailed(f"Mailbox doesn't exist: {wire}") from None  # no code, as Dovecot
    await box.sync()
    sel = SelectedMailbox(box, name, read_only)
    out = [sel.flags_line().decode()]
    if sel.read_only:
        out.append("* OK [PERMANENTFLAGS ()] Read-only mailbox.")
    else:
        out.append(sel.permanent_flags_line().decode("utf-8", "surrogateescape"))
    out.append(f"* {sel.count} EXISTS")
    recent = len(sel.recent)
    out.append(f"* {recent} RECENT")
    first_unseen = next((i for i, m in enumerate(sel.infos, 1) if "\\Seen" not in m.flags), 0)
    if first_unseen:
        out.append(f"* OK [UNSEEN {first_unseen}] First unseen.")
    out.append(f"* OK [UIDVALIDITY {box.uidvalidity}] UIDs valid")
    out.append(f"* OK [UIDNEXT {box.uidnext}] Predicted next UID")
    if s.condstore:
        out.append(f"* OK [HIGHESTMODSEQ {box.highest_modseq}] Highest")
    for line in out:
        s.write(line.rstrip("\r\n").encode("utf-8", "surrogateescape") + b"\r\n")
    if qresync is not None and qresync[0] == box.uidvalidity:
        _qresync_report(s, sel, qresync[1], qresync[2])
    s.selected = sel
    s.state = SELECTED
    mode = "[READ-ONLY]" if sel.read_only else "[READ-WRITE]"
    return f"{mode} {'Examine' if read_only else 'Select'} completed."


def _check_qresync_sets(rest: list[Arg]) -> None:
    """`[known-uids] [(known-sequence-set known-uid-set)]` (RFC 7162 3.2.5):
    the two match sets must name as many messages (Dovecot's "Invalid
    QRESYNC sets", cmd-select.c)."""
    for item in rest:
        if not isinstance(item, list):
            parse_sequence_set(A.atom(item), allow_saved=False)
            continue
        if len(item) != 2:
            raise ImapParseError("Invalid QRESYNC known-sequence-set")
        seqs, uids = (parse_sequence_set(A.atom(x), allow_saved=False) for x in item)
        if any(STAR in r for r in seqs.ranges + uids.ranges) or \
                _count(seqs) != _count(uids):
            raise ImapParseError("Invalid QRESYNC sets")


def _count(seqset: SequenceSet) -> int:
    return sum(abs(hi - lo) + 1 for lo, hi in seqset.ranges)


def _qresync_report(s: ImapSession, sel: SelectedMailbox, modseq: int, rest: list[Arg]) -> None:
    """RFC 7162 3.2.5.2: VANISHED (EARLIER) then FETCH for what changed."""
    known: list[int] | None = None
    if rest:
        first = rest[0]
        if not isinstance(first, list):
            known_set = parse_sequence_set(A.atom(first), allow_saved=False)
            known = known_set.resolve(max(sel.mailbox.uidnext - 1, 0))
    # We keep no expunge history: every UID the client may know of that is
    # gone is reported, which RFC 7162 3.2.5.2 permits.
    present = set(sel.uids)
    candidates = known if known is not None else range(1, sel.mailbox.uidnext)
    vanished = [u for u in candidates if u not in present]
    if vanished:
        s.write(b"* VANISHED (EARLIER) " + format_uid_set(vanished).encode() + b"\r\n")
    for seq, info in enumerate(sel.infos, 1):
        if info.modseq > modseq:
            # Dovecot answers with an internal `FETCH (UID FLAGS MODSEQ)`,
            # in that order (imap-fetch.c), unlike its sync FETCHes.
            flags = flag_list(ordered_flags(info.flags, info.uid in sel.recent))
            s.write(b"* %d FETCH (UID %d FLAGS %s MODSEQ (%d))\r\n"
                    % (seq, info.uid, flags, info.modseq))


async def cmd_create(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    (wire,) = A.string_args(args, 1)
    name = s.names.from_wire(wire)
    sep = s.names.separator
    if name.endswith(sep):  # RFC 3501 6.3.3: a trailing separator is a hint
        name = name.rstrip(sep)
    if not name:
        raise ImapCommandFailed("Invalid mailbox name: Name is empty", "CANNOT")
    if name.upper() == "INBOX":
        raise ImapCommandFailed("Mailbox already exists", "ALREADYEXISTS")
    special: list[str] = []
    if len(args) >= 2 and isinstance(args[1], list):  # RFC 6154 CREATE-SPECIAL-USE: (USE (\Sent))
        opts = A.plist(args[1])
        if len(opts) != 2 or A.atom(opts[0]).upper() != "USE":
            raise ImapParseError("Unknown CREATE parameters")
        special = [A.atom(a) for a in A.plist(opts[1])]
    assert s.store is not None
    await s.store.create_mailbox(name, special)
    return "Create completed."


async def cmd_delete(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    from maa_server.protocols.imap.session import AUTHENTICATED

    (wire,) = A.string_args(args, 1)
    name = s.names.from_wire(wire)
    if name.upper() == "INBOX":
        raise ImapCommandFailed("INBOX can't be deleted.")
    assert s.store is not None
    if s.selected is not None and s.selected.name == name:
        # Dovecot closes the mailbox first (cmd-delete.c).
        s.selected = None
        s.state = AUTHENTICATED
    try:
        await s.store.delete_mailbox(name)
    except NoSuchMailbox:
        raise _not_found(wire) from None
    except MailboxError as exc:
        if exc.code != "INUSE":
            raise
        # Dovecot 2.3 says this one without a response code (observed).
        raise ImapCommandFailed(str(exc)) from None
    return "Delete completed."


async def cmd_rename(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    old_wire, new_wire = A.string_args(args, 2)
    old, new = s.names.from_wire(old_wire), s.names.from_wire(new_wire)
    if old.upper() == "INBOX":
        # RFC 3501 6.3.5 would move INBOX's messages; Dovecot 2.3 with
        # Maildir refuses (observed), and so do we.
        raise ImapCommandFailed("Renaming INBOX isn't supported.", "CANNOT")
    new = new.rstrip(s.names.separator)
    if not new:
        raise ImapCommandFailed("Invalid mailbox name: Name is empty", "CANNOT")
    if new == old:
        raise ImapCommandFailed("Can't rename mailbox to itself", "ALREADYEXISTS")
    assert s.store is not None
    try:
        await s.store.rename_mailbox(old, new)
    except NoSuchMailbox:
        raise _not_found(old_wire) from None
    return "Rename completed."


async def cmd_subscribe(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    (wire,) = A.string_args(args, 1)
    assert s.store is not None
    name = s.names.from_wire(wire).rstrip(s.names.separator)
    if name.upper() != "INBOX" and name not in {e.name for e in await s.store.list_mailboxes()}:
        # Dovecot refuses to subscribe to a mailbox that does not exist.
        raise ImapCommandFailed(f"Mailbox doesn't exist: {wire}")
    await s.store.subscribe(name)
    return "Subscribe completed."


async def cmd_unsubscribe(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    (wire,) = A.string_args(args, 1)
    assert s.store is not None
    await s.store.unsubscribe(s.names.from_wire(wire).rstrip(s.names.separator))
    return "Unsubscribe completed."


# Dovecot 2.3's items (imap-status.c); DELETED is IMAP4rev2's, which 2.3
# answers "Invalid status item DELETED" (observed).
STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ",
                "SIZE")


def parse_status_items(arg: Arg) -> list[str]:
    items = [A.atom(a).upper() for a in A.plist(arg)]
    if not items:
        raise ImapParseError("Empty status list")
    for item in items:
        if item not in STATUS_ITEMS:
            raise ImapParseError(f"Invalid status item {item}")
    return items


def status_line(wire_name: bytes, st: MailboxStatus, items: list[str]) -> bytes:
    values = {"MESSAGES": st.messages, "RECENT": st.recent, "UIDNEXT": st.uidnext,
              "UIDVALIDITY": st.uidvalidity, "UNSEEN": st.unseen,
              "HIGHESTMODSEQ": st.highestmodseq, "SIZE": st.size, "DELETED": st.deleted}
    # Dovecot answers in its own fixed order, whatever order was asked
    # (imap-status.c), as the Thunderbird transcript shows.
    body = " ".join(f"{i} {values[i]}" for i in STATUS_ITEMS if i in items)
    return b"* STATUS " + wire_name + b" (" + body.encode() + b")\r\n"


async def mailbox_status(s: ImapSession, name: str) -> MailboxStatus:
    assert s.store is not None
    st = await s.store.status(name)
    sel = s.selected
    if sel is not None and sel.name == name:
        # Our own view holds the \Recent messages we claimed, and the
        # messages it has not yet been told are expunged (Dovecot answers
        # from the session's view too: observed).
        st = MailboxStatus(sel.count, max(st.recent, len(sel.recent)), st.uidnext,
                           st.uidvalidity, st.unseen, st.highestmodseq, st.size, st.deleted)
    return st


async def cmd_status(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    if len(args) < 2:
        raise ImapParseError("Missing arguments")
    wire = A.astring(args[0])
    items = parse_status_items(args[1])
    name = s.names.from_wire(wire)
    try:
        st = await mailbox_status(s, name)
    except NoSuchMailbox:
        raise ImapCommandFailed(f"Mailbox doesn't exist: {wire}") from None
    s.write(status_line(mailbox_name(s.names.to_wire(name)), st, items))
    if s.selected is not None and s.selected.name == name:
        # RFC 3501 6.3.10 advises against it; Dovecot says so (observed).
        return "[CLIENTBUG] Status on selected mailbox completed."
    return "Status completed."


async def cmd_namespace(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    # Dovecot ignores arguments here (observed).
    prefix = quoted_or_literal(s.names.prefix)
    sep = quoted_or_literal(s.names.separator)
    s.write(b"* NAMESPACE ((" + prefix + b" " + sep + b")) NIL NIL\r\n")
    return "Namespace completed."


__all__ = [
    "cmd_create",
    "cmd_delete",
    "cmd_examine",
    "cmd_namespace",
    "cmd_rename",
    "cmd_select",
    "cmd_status",
    "cmd_subscribe",
    "cmd_unsubscribe",
    "flag_list",
    "mailbox_status",
    "parse_status_items",
    "status_line",
]


async def cmd_metadata(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    """GETMETADATA / SETMETADATA (RFC 5464): Dovecot knows the commands but,
    without `imap_metadata = yes` (not supported here), refuses them so."""
    if not args:
        raise ImapParseError("Invalid arguments")
    raise ImapCommandFailed("Generic mailbox attributes not enabled.", "CANNOT")
