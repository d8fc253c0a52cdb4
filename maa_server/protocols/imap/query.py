"""FETCH and SEARCH commands: argument handling around the fetch/ and search/
packages (which render items and evaluate keys), plus the session-level parts:
implicit \\Seen, CHANGEDSINCE/VANISHED modifiers (RFC 7162 3.1.4, 3.2.6),
ESEARCH return options (RFC 4731) and `$` saving (RFC 5182).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from maa_server.protocols.imap import args as A
from maa_server.protocols.imap.errors import ImapCommandFailed, ImapParseError
from maa_server.protocols.imap.sequence import format_uid_set, parse_sequence_set
from maa_server.protocols.imap.tokens import Arg, Atom
from maa_server.storage.interface import SEEN, NoSuchMessage

if TYPE_CHECKING:
    from maa_server.protocols.imap.session import ImapSession


async def cmd_fetch(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    from maa_server.protocols.imap.fetch import (
        parse_fetch_items,
        parse_fetch_modifiers,
        render_fetch,
    )

    A.count(args, 2, 3)
    sel = s.selected
    assert sel is not None
    seqset = parse_sequence_set(A.atom(args[0]))
    mods = parse_fetch_modifiers(args[2], qresync=s.qresync, uid=uid) if len(args) == 3 else {}
    if mods.get("VANISHED") and (not uid or "CHANGEDSINCE" not in mods):
        # RFC 7162 3.2.6: only UID FETCH, and only together with CHANGEDSINCE.
        raise ImapParseError("VANISHED used without CHANGEDSINCE")
    req = parse_fetch_items(args[1], mods or None)
    changedsince = mods.get("CHANGEDSINCE")
    assert changedsince is None or isinstance(changedsince, int)
    if req.wants_modseq:
        implicit_condstore(s)  # RFC 7162 3.1: MODSEQ / CHANGEDSINCE enable it
    chosen = sel.select(seqset, uid)
    if mods.get("VANISHED"):
        upper = sel.mailbox.uidnext - 1
        present = set(sel.uids)
        gone = [u for u in seqset.resolve(upper) if u not in present] if upper > 0 else []
        if gone:
            s.write(b"* VANISHED (EARLIER) " + format_uid_set(gone).encode() + b"\r\n")
    flags_changed: set[int] = set()
    if req.sets_seen and not sel.read_only:
        need = [m.uid for _, m in chosen if SEEN not in m.flags]
        if need:
            changed, _ = await sel.mailbox.store_flags(need, [SEEN], "add")
            sel.replace_infos(changed)
            flags_changed = {m.uid for m in changed}
    missing = False
    kind = _fetch_kind(req)
    unflushed = 0
    for seq, old in chosen:
        info = sel.infos[seq - 1]
        if changedsince is not None and info.modseq <= changedsince:
            continue
        try:
            data = await render_fetch(req, seq, info, sel.mailbox, uid_command=uid,
                                      recent=info.uid in sel.recent, condstore=s.condstore,
                                      flags_changed=info.uid in flags_changed)
        except NoSuchMessage:
            missing = True
            continue
        if data:
            if req.wants_modseq:
                sel.note_modseq(info.modseq)
            s.write(data)
            _count_fetch(s, kind, data)
            unflushed += len(data)
            if unflushed >= DRAIN_EVERY:
                # Backpressure: a slow reader slows only itself, and a huge
                # FETCH never sits in memory as a whole.
                await s.conn.drain()
                unflushed = 0
    if flags_changed and s.condstore:
        # The implicit \\Seen moved these messages' modseqs: with CONDSTORE
        # Dovecot's closing sync tells them (`* 2 FETCH (MODSEQ (5))`, captured).
        for seq, _ in chosen:
            info = sel.infos[seq - 1]
            if info.uid in flags_changed:
                uid_part = b"UID %d " % info.uid if s.qresync else b""
                s.write(b"* %d FETCH (%sMODSEQ (%d))\r\n" % (seq, uid_part, info.modseq))
                sel.note_modseq(info.modseq)
    if missing:
        raise ImapCommandFailed("Some of the requested messages no longer exist.",
                                "EXPUNGEISSUED")
    return "Fetch completed."


DRAIN_EVERY = 256 * 1024


def _fetch_kind(req: Any) -> str:
    """"body" when message text is fetched, "hdr" for headers only, else ""
    (imap_logout_format's body_* / hdr_* counters)."""
    from maa_server.protocols.imap.fetch import SectionItem, SimpleItem

    kind = ""
    for item in req.items:
        if isinstance(item, SectionItem):
            if item.spec.startswith("HEADER"):
                kind = kind or "hdr"
            else:
                return "body"
        elif isinstance(item, SimpleItem):
            if item.name in ("RFC822", "RFC822.TEXT"):
                return "body"
            if item.name == "RFC822.HEADER":
                kind = kind or "hdr"
    return kind


_LITERAL = re.compile(rb"\{(\d+)\}\r\n")


def _count_fetch(s: ImapSession, kind: str, data: bytes) -> None:
    """Dovecot counts the bytes of the header/body data sent (the literals)."""
    if not kind:
        return
    size = 0
    pos = 0
    while (m := _LITERAL.search(data, pos)) is not None:
        n = int(m.group(1))
        size += n
        pos = m.end() + n
    if kind == "body":
        s.stats.body_count += 1
        s.stats.body_bytes += size
    elif kind == "hdr":
        s.stats.hdr_count += 1
        s.stats.hdr_bytes += size


ESEARCH_OPTIONS = {"MIN", "MAX", "ALL", "COUNT", "SAVE"}


def implicit_condstore(s: ImapSession) -> None:
    """RFC 7162 3.1: CHANGEDSINCE, UNCHANGEDSINCE, a MODSEQ search key or the
    MODSEQ fetch item turn CONDSTORE on; as with ENABLE, Dovecot then tells
    the selected mailbox's HIGHESTMODSEQ at once (imap-client.c
    client_enable -> imap_sync: `* OK [HIGHESTMODSEQ n] Highest`)."""
    if s.condstore:
        return
    s.enabled.add("CONDSTORE")
    if s.selected is not None:
        s.untagged(f"OK [HIGHESTMODSEQ {s.selected.mailbox.highest_modseq}] Highest")


def parse_return_options(args: list[Arg], command: str) -> tuple[list[str] | None, list[Arg]]:
    """`RETURN (opts)` at the head of SEARCH (RFC 4731) or SORT (RFC 5267):
    the options (None without RETURN) and the remaining arguments."""
    if len(args) >= 2 and isinstance(args[0], Atom) and args[0].upper() == "RETURN" \
            and isinstance(args[1], list):
        opts = [A.atom(a).upper() for a in A.plist(args[1])]
        for opt in opts:
            if opt not in ESEARCH_OPTIONS:
                # Dovecot's text, for SORT too (imap-search-args.c).
                raise ImapParseError("Unknown SEARCH return option")
        return opts, list(args[2:])
    return None, list(args)


def esearch_answer(s: ImapSession, tag: str, uid: bool, results: list[int],
                   return_opts: list[str], modseq: int, *, sorted_order: bool) -> bytes:
    """The `* ESEARCH` line for RETURN options (RFC 4731, RFC 5267 for
    SORT), saving `$` first when SAVE is asked for (RFC 5182). `results`
    are sequence numbers or UIDs as sent; with `sorted_order` they are in
    SORT order, and MIN/MAX mean the first/last sorted (as Dovecot does)."""
    sel = s.selected
    assert sel is not None
    opts = return_opts or ["ALL"]  # RFC 4731 3.1: RETURN () means ALL
    if "SAVE" in opts:
        saved = list(results) if uid else [sel.infos[n - 1].uid for n in results]
        others = [o for o in opts if o != "SAVE"]
        if others and set(others) <= {"MIN", "MAX"} and saved:
            # RFC 5182 2.4: with only MIN/MAX, just those are saved.
            keep = []
            if "MIN" in others:
                keep.append(saved[0] if sorted_order else min(saved))
            if "MAX" in others:
                keep.append(saved[-1] if sorted_order else max(saved))
            saved = keep
        sel.search_result = sorted(set(saved))
        sel.has_saved_result = True
        if not others:
            return b""
    parts = [f'* ESEARCH (TAG "{tag}")']
    if uid:
        parts.append("UID")
    if results:
        if "MIN" in opts:
            parts.append(f"MIN {results[0] if sorted_order else min(results)}")
        if "MAX" in opts:
            parts.append(f"MAX {results[-1] if sorted_order else max(results)}")
    # Dovecot's order: MIN MAX ALL COUNT (imap-search.c). A sorted ALL
    # keeps the sort order, merging only ascending runs (`1:2,4,3,5`).
    if results and "ALL" in opts:
        parts.append(f"ALL {format_uid_set(results if sorted_order else sorted(results))}")
    if "COUNT" in opts:
        parts.append(f"COUNT {len(results)}")
    if modseq:
        parts.append(f"MODSEQ {modseq}")
    return " ".join(parts).encode() + b"\r\n"


async def cmd_search(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    from maa_server.protocols.imap.search import evaluate_search, parse_search

    sel = s.selected
    assert sel is not None
    rest = list(args)
    return_opts, rest = parse_return_options(rest, "SEARCH")
    charset: str | None = None
    if len(rest) >= 2 and isinstance(rest[0], Atom) and rest[0].upper() == "CHARSET":
        charset = A.astring(rest[1])
        rest = rest[2:]
    if not rest:
        raise ImapParseError("Missing search parameters")
    program = parse_search(rest, charset)
    seqs = await evaluate_search(program, sel.view(), sel.mailbox, recent_uids=set(sel.recent),
                                 last_seq=sel.count, last_uid=sel.last_uid,
                                 saved_uids=sel.search_result if sel.has_saved_result else None)
    results = [sel.infos[q - 1].uid for q in seqs] if uid else list(seqs)
    modseq = 0
    if program.uses_modseq:
        implicit_condstore(s)  # RFC 7162 3.1: a MODSEQ search key enables it
        if seqs:
            modseq = max(sel.infos[q - 1].modseq for q in seqs)
    if return_opts is None:
        line = "* SEARCH" + "".join(f" {n}" for n in results)
        if modseq:
            line += f" (MODSEQ {modseq})"
        s.write(line.encode() + b"\r\n")
        return "Search completed."
    s.write(esearch_answer(s, tag, uid, results, return_opts, modseq, sorted_order=False))
    return "Search completed."


async def cmd_cancelupdate(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    """CANCELUPDATE (RFC 5267 4.3): we never keep RETURN (UPDATE) searches,
    so every tag is unknown, in Dovecot's words."""
    if not args:
        raise ImapParseError("Invalid parameters")
    raise ImapCommandFailed("Unknown tag.")
