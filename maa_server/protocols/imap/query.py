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
    mods = parse_fetch_modifiers(args[2], qresync=s.qresync) if len(args) == 3 else {}
    if mods.get("VANISHED") and (not uid or "CHANGEDSINCE" not in mods):
        # RFC 7162 3.2.6: only UID FETCH, and only together with CHANGEDSINCE.
        raise ImapParseError("VANISHED used without CHANGEDSINCE")
    req = parse_fetch_items(args[1], mods or None)
    changedsince = mods.get("CHANGEDSINCE")
    assert changedsince is None or isinstance(changedsince, int)
    if changedsince is not None:
        s.enabled.add("CONDSTORE")  # RFC 7162 3.1: CHANGEDSINCE enables it
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
            s.write(data)
            _count_fetch(s, kind, data)
            unflushed += len(data)
            if unflushed >= DRAIN_EVERY:
                # Backpressure: a slow reader slows only itself, and a huge
                # FETCH never sits in memory as a whole.
                await s.conn.drain()
                unflushed = 0
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


async def cmd_search(s: ImapSession, tag: str, args: list[Arg], uid: bool) -> str | None:
    from maa_server.protocols.imap.search import evaluate_search, parse_search

    sel = s.selected
    assert sel is not None
    rest = list(args)
    return_opts: list[str] | None = None
    if len(rest) >= 2 and isinstance(rest[0], Atom) and rest[0].upper() == "RETURN":
        return_opts = [A.atom(a).upper() for a in A.plist(rest[1])]
        for opt in return_opts:
            if opt not in ESEARCH_OPTIONS:
                raise ImapParseError(f"Unknown SEARCH return option {opt}")
        rest = rest[2:]
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
    if getattr(program, "uses_modseq", False) and seqs:
        modseq = max(sel.infos[q - 1].modseq for q in seqs)
    if return_opts is None:
        line = "* SEARCH" + "".join(f" {n}" for n in results)
        if modseq:
            line += f" (MODSEQ {modseq})"
        s.write(line.encode() + b"\r\n")
        return "Search completed."
    opts = return_opts or ["ALL"]  # RFC 4731 3.1: RETURN () means ALL
    if "SAVE" in opts:
        saved = [sel.infos[q - 1].uid for q in seqs]
        others = [o for o in opts if o != "SAVE"]
        if others and set(others) <= {"MIN", "MAX"} and saved:
            # RFC 5182 2.4: with only MIN/MAX, just those are saved.
            keep = []
            if "MIN" in others:
                keep.append(saved[0])
            if "MAX" in others:
                keep.append(saved[-1])
            saved = sorted(set(keep))
        sel.search_result = saved
        sel.has_saved_result = True
        if not others:
            return "Search completed."
    parts = [f'* ESEARCH (TAG "{tag}")']
    if uid:
        parts.append("UID")
    if results:
        if "MIN" in opts:
            parts.append(f"MIN {min(results)}")
        if "MAX" in opts:
            parts.append(f"MAX {max(results)}")
    # Dovecot's order: MIN MAX ALL COUNT (imap-search.c).
    if results and "ALL" in opts:
        parts.append(f"ALL {format_uid_set(sorted(results))}")
    if "COUNT" in opts:
        parts.append(f"COUNT {len(results)}")
    if modseq:
        parts.append(f"MODSEQ {modseq}")
    s.write(" ".join(parts).encode() + b"\r\n")
    return "Search completed."
