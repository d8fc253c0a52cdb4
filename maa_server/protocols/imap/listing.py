"""LIST and LSUB (RFC 3501 6.3.8-9) with LIST-EXTENDED (RFC 5258),
LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348).

Patterns are matched against wire names (modified UTF-7, namespace prefix
included); `*` matches anything, `%` anything but the separator; INBOX
matches case-insensitively.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from maa_server.protocols.imap import args as A
from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.mailboxes import (
    mailbox_status,
    parse_status_items,
    status_line,
)
from maa_server.protocols.imap.responses import mailbox_name, quoted_or_literal
from maa_server.protocols.imap.tokens import Arg, Atom
from maa_server.storage.interface import MailboxEntry, MailboxError

if TYPE_CHECKING:
    from maa_server.protocols.imap.session import ImapSession

SELECTION_OPTIONS = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
RETURN_OPTIONS = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"}
CHILD_ATTRS = {"\\HasChildren", "\\HasNoChildren"}


def pattern_regex(pattern: str, sep: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(sep)}]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def matches(wire: str, patterns: list[re.Pattern[str]], inbox_patterns: list[re.Pattern[str]]) -> bool:
    if wire.upper() == "INBOX" or wire.upper().startswith("INBOX/") or wire.upper().startswith("INBOX."):
        candidates = inbox_patterns
    else:
        candidates = patterns
    return any(p.match(wire) for p in candidates)


def _inbox_pattern(pattern: str) -> str:
    """Spell a leading `inbox` in patterns as INBOX (INBOX is case-insensitive)."""
    return "INBOX" + pattern[5:] if pattern[:5].upper() == "INBOX" else pattern


async def cmd_lsub(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    # Dovecot's texts for what is missing (cmd-list.c).
    if not args:
        raise ImapParseError("Invalid reference")
    if len(args) < 2:
        raise ImapParseError("Invalid pattern")
    reference, pattern = A.astring(args[0]), A.astring(args[1])
    sep = s.names.separator
    assert s.store is not None
    if pattern == "":
        s.write(b'* LSUB (\\Noselect) ' + quoted_or_literal(sep) + b' ""\r\n')
        return "Lsub completed."
    full = reference + pattern
    rx = [pattern_regex(full, sep)]
    irx = [pattern_regex(_inbox_pattern(full), sep)]
    entries = {e.name: e for e in await s.store.list_mailboxes()}
    subscribed = await s.store.subscriptions()
    wires = {s.names.to_wire(name) for name in subscribed}
    done: set[str] = set()

    def lsub(attrs: list[str], wire: str) -> None:
        done.add(wire)
        s.write(b"* LSUB (" + " ".join(attrs).encode() + b") " + quoted_or_literal(sep) + b" "
                + mailbox_name(wire) + b"\r\n")

    for name in subscribed:
        wire = s.names.to_wire(name)
        if not matches(wire, rx, irx):
            # RFC 3501 6.3.9: `%` matching an unsubscribed parent of a
            # subscribed mailbox lists the parent as \Noselect (Dovecot too).
            levels = wire.split(sep)
            for depth in range(1, len(levels)):
                parent = sep.join(levels[:depth])
                if parent not in wires and parent not in done and matches(parent, rx, irx):
                    lsub(["\\Noselect"], parent)
            continue
        entry = entries.get(name)
        attrs: list[str] = []
        # A subscription to a mailbox that is gone: no attributes (observed).
        if entry is not None:
            if "\\Noselect" in entry.attributes:
                attrs.append("\\Noselect")
            attrs.extend(sorted(entry.special_use))
        lsub(attrs, wire)
    return "Lsub completed."


async def cmd_list(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    if len(args) < 2:
        raise ImapParseError("Invalid reference" if not args else "Invalid pattern")
    rest = list(args)
    selection: set[str] = set()
    extended = False
    if isinstance(rest[0], list):
        extended = True
        selection = {A.atom(a).upper() for a in A.plist(rest.pop(0))}
        unknown = selection - SELECTION_OPTIONS
        if unknown:
            raise ImapParseError("Unknown select options")  # Dovecot's text (cmd-list.c)
    if len(rest) < 2:
        raise ImapParseError("Invalid arguments")
    reference = A.astring(rest.pop(0))
    pat_arg = rest.pop(0)
    patterns = [A.astring(p) for p in pat_arg] if isinstance(pat_arg, list) else [A.astring(pat_arg)]
    # RFC 5258: a list of patterns is the extended syntax too (then no
    # CHILDREN attributes unless asked for, as Dovecot answers).
    extended = extended or isinstance(pat_arg, list)
    returns: set[str] = set()
    status_items: list[str] = []
    if rest:
        if len(rest) != 2 or not isinstance(rest[0], Atom) or rest[0].upper() != "RETURN":
            raise ImapParseError("Invalid LIST arguments")
        extended = True
        opts = A.plist(rest[1])
        i = 0
        while i < len(opts):
            opt = A.atom(opts[i]).upper()
            if opt not in RETURN_OPTIONS:
                raise ImapParseError(f"Unknown LIST return option {opt}")
            if opt == "STATUS":
                if i + 1 >= len(opts):
                    raise ImapParseError("Missing STATUS items")
                status_items = parse_status_items(opts[i + 1])
                i += 1
            returns.add(opt)
            i += 1
    if "RECURSIVEMATCH" in selection and selection <= {"RECURSIVEMATCH", "REMOTE"}:
        raise ImapParseError("RECURSIVEMATCH must not be the only selection option")
    sep = s.names.separator
    sep_q = quoted_or_literal(sep)
    if patterns == [""] and not extended:
        # RFC 3501 6.3.8: the hierarchy delimiter and root of the reference.
        root = reference.split(sep)[0] + sep if sep in reference else ""
        s.write(b"* LIST (\\Noselect) " + sep_q + b" " + quoted_or_literal(root) + b"\r\n")
        return "List completed."
    assert s.store is not None
    full = [reference + p for p in patterns if p != ""]
    rx = [pattern_regex(p, sep) for p in full]
    irx = [pattern_regex(_inbox_pattern(p), sep) for p in full]
    entries = await s.store.list_mailboxes()
    subscribed = set(await s.store.subscriptions())
    only_subscribed = "SUBSCRIBED" in selection
    only_special = "SPECIAL-USE" in selection
    show_children = not extended or "CHILDREN" in returns
    show_subscribed = "SUBSCRIBED" in returns or only_subscribed
    # Dovecot lists special-use flags with plain LIST too (see transcript).
    show_special = not extended or "SPECIAL-USE" in returns or only_special
    recursive = "RECURSIVEMATCH" in selection
    listed = _listed(entries, subscribed, only_subscribed)
    if recursive and only_subscribed:
        listed = _with_subscribed_parents(listed, entries, subscribed, sep)
    for entry in listed:
        wire = s.names.to_wire(entry.name)
        if not matches(wire, rx, irx):
            continue
        childinfo = b""
        if recursive and only_subscribed and _has_subscribed_child(
                entry.name, subscribed, sep, s.names.to_wire, rx, irx):
            # RFC 5258 3.5: a match whose descendant is subscribed.
            childinfo = b' (CHILDINFO ("SUBSCRIBED"))'
            if entry.name not in subscribed:
                entry = MailboxEntry(entry.name, frozenset())
        elif entry.name not in subscribed and only_subscribed:
            continue  # an ancestor added for CHILDINFO that does not need it
        if only_special and not entry.special_use:
            continue
        attrs = _attributes(entry, entry.name in subscribed, show_children=show_children,
                            show_subscribed=show_subscribed, show_special=show_special,
                            selecting_subscribed=only_subscribed)
        s.write(b"* LIST (" + " ".join(attrs).encode() + b") " + sep_q + b" "
                + mailbox_name(wire) + childinfo + b"\r\n")
        if status_items and "\\Noselect" not in entry.attributes and \
                "\\NonExistent" not in attrs:
            try:
                st = await mailbox_status(s, entry.name)
            except MailboxError:
                continue
            s.write(status_line(mailbox_name(wire), st, status_items))
    return "List completed."


def _listed(entries: list[MailboxEntry], subscribed: set[str],
            only_subscribed: bool) -> list[MailboxEntry]:
    if not only_subscribed:
        return entries
    known = {e.name for e in entries}
    out = [e for e in entries if e.name in subscribed]
    # RFC 5258 3: a subscribed name that no longer exists is \NonExistent.
    out.extend(MailboxEntry(n, frozenset({"\\NonExistent"})) for n in sorted(subscribed - known))
    return out


def _has_subscribed_child(name: str, subscribed: set[str], sep: str, to_wire: Any,
                          rx: list[re.Pattern[str]], irx: list[re.Pattern[str]]) -> bool:
    """RFC 5258 3.5: a subscribed descendant that the pattern itself misses."""
    prefix = name + sep
    return any(sub.startswith(prefix) and not matches(to_wire(sub), rx, irx)
               for sub in subscribed)


def _with_subscribed_parents(listed: list[MailboxEntry], entries: list[MailboxEntry],
                             subscribed: set[str], sep: str) -> list[MailboxEntry]:
    """Add the unsubscribed ancestors of subscribed mailboxes (they may match
    a `%` pattern and then carry CHILDINFO), in the store's order."""
    have = {e.name for e in listed}
    wanted: set[str] = set()
    for sub in subscribed:
        parts = sub.split(sep)
        for i in range(1, len(parts)):
            wanted.add(sep.join(parts[:i]))
    out = list(listed)
    for entry in entries:
        if entry.name in wanted and entry.name not in have:
            out.append(entry)
            have.add(entry.name)
    for name in sorted(wanted - have):
        out.append(MailboxEntry(name, frozenset({"\\NonExistent"})))
    return out


def _attributes(entry: MailboxEntry, is_subscribed: bool, *, show_children: bool,
                show_subscribed: bool, show_special: bool,
                selecting_subscribed: bool = False) -> list[str]:
    out: list[str] = []
    for a in sorted(entry.attributes, key=_attr_order):
        if a in CHILD_ATTRS and not show_children:
            continue
        if a in ("\\Marked", "\\UnMarked", "\\Unmarked") and not show_children:
            continue
        out.append(a)
    if "\\NonExistent" in out and "\\Noselect" in out:
        out.remove("\\Noselect")  # RFC 5258: \NonExistent implies \Noselect
    if selecting_subscribed and "\\Noselect" in out:
        out.remove("\\Noselect")  # Dovecot lists subscriptions without it
    if show_subscribed and is_subscribed:
        out.insert(0, "\\Subscribed")
    if show_special:
        out.extend(sorted(entry.special_use))
    return out


_ORDER = ["\\Noselect", "\\NonExistent", "\\HasChildren", "\\HasNoChildren", "\\Marked",
          "\\UnMarked", "\\Unmarked"]


def _attr_order(attr: str) -> int:
    return _ORDER.index(attr) if attr in _ORDER else len(_ORDER)
