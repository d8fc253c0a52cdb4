"""One session's view of its selected mailbox (RFC 3501 sections 2.3.1.2, 5.5, 7.4.1).

Sequence numbers belong to the session: a message expunged by someone else
keeps its number until this session may report the EXPUNGE (never during
FETCH, STORE or SEARCH). The view therefore holds its own list of
MessageInfo and diffs it against `Mailbox.messages()`; `Mailbox.version`
lets it skip the diff when nothing changed.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Sequence
from itertools import compress

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.responses import flag_list, ordered_flags
from maa_server.protocols.imap.sequence import SequenceSet, format_uid_set
from maa_server.storage.interface import Mailbox, MessageInfo

_UID = operator.attrgetter("uid")


class SelectedMailbox:
    def __init__(self, mailbox: Mailbox, name: str, read_only: bool) -> None:
        self.mailbox = mailbox
        self.name = name  # the store's name (for STATUS/DELETE checks)
        self.read_only = read_only or mailbox.read_only
        # The mailbox's own immutable sequences, shared by every session
        # whose view is the current one (an idle session then costs no
        # O(messages) memory); copied into lists by _own() before a change.
        self.infos: Sequence[MessageInfo] = mailbox.messages()
        self.uids: Sequence[int] = mailbox.message_uids()
        self.recent: set[int] = set()
        self.seen_version = mailbox.version
        self.keywords: tuple[str, ...] = ()
        self.keywords = self._visible_keywords(self.infos)
        # RFC 7162 3.2.10 bookkeeping, as Dovecot's client->
        # sync_last_full_modseq and highest_fetch_modseq (imap-sync.c).
        self.last_full_modseq = mailbox.highest_modseq
        self.fetched_modseq = 0
        self.search_result: list[int] = []  # RFC 5182 `$` (UIDs)
        self.has_saved_result = False
        self._deferred_expunge = False  # an expunge we could not report yet
        self._pending_gone: set[int] = set()  # UIDs gone from the mailbox, still in our view
        if not self.read_only:
            self.recent = set(mailbox.claim_recent())
        else:
            self.recent = self._peek_recent()

        self.reported_recent = len(self.recent)  # the RECENT count the client has

    def _own(self) -> tuple[list[MessageInfo], list[int]]:
        """The view as lists of our own, to be changed."""
        if not isinstance(self.infos, list):
            self.infos = list(self.infos)
        if not isinstance(self.uids, list):
            self.uids = list(self.uids)
        return self.infos, self.uids

    def _share(self, current: Sequence[MessageInfo]) -> None:
        """Go back to the mailbox's sequences when the view equals them.
        Our UIDs always include the mailbox's (expunges wait for a report,
        new UIDs are all taken), both ascending: equal counts mean equal
        UIDs, and every changed MessageInfo was taken."""
        if len(self.uids) == len(current) and self.infos is not current:
            self.infos = current
            self.uids = self.mailbox.message_uids()

    def _peek_recent(self) -> set[int]:
        """EXAMINE shows \\Recent without claiming it (RFC 3501 6.3.2). The
        unclaimed messages are the newest ones, so take the last N UIDs."""
        n = self.mailbox.recent_count()
        return set(self.uids[-n:]) if n > 0 else set()

    # -- lookups ----------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.infos)

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int:
        """1-based sequence number of uid, or 0."""
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0

    def view(self) -> list[tuple[int, MessageInfo]]:
        return list(enumerate(self.infos, 1))

    def select(self, seqset: SequenceSet, uid: bool) -> list[tuple[int, MessageInfo]]:
        """(seq, info) for the messages a set names, ascending.

        A sequence-number set naming a number past the end is invalid
        (BAD, as Dovecot answers); a UID set simply names what exists,
        and `n:*` always includes the last message (RFC 3501 6.4.8)."""
        if seqset.saved:
            wanted = set(self.search_result)
            return [(i, m) for i, m in enumerate(self.infos, 1) if m.uid in wanted]
        if uid:
            # Whole slices of the view at C speed (UID FETCH 1:* of 100,000).
            out: list[tuple[int, MessageInfo]] = []
            for start, end in seqset.index_ranges(self.uids, self.last_uid):
                out.extend(zip(range(start + 1, end + 1), self.infos[start:end]))
            return out
        if seqset.out_of_range(self.count):
            raise ImapParseError("Invalid messageset")
        return [(s, self.infos[s - 1]) for s in seqset.resolve(self.count)]

    def replace_infos(self, changed: Sequence[MessageInfo]) -> None:
        """Our own STORE changed these: take them without telling ourselves."""
        for info in changed:
            seq = self.seq_of(info.uid)
            if seq:
                self._own()[0][seq - 1] = info

    # -- change reporting (RFC 3501 5.2, 7.3.1, 7.4.1; RFC 7162 3.2.10) ------

    def refresh(self, *, allow_expunge: bool, condstore: bool, qresync: bool) -> list[bytes]:
        """Untagged responses that bring the client up to date.

        Dovecot's order (imap-sync.c): FLAGS/PERMANENTFLAGS for new
        keywords, FETCH for flag changes (numbered as the client still
        numbers), then EXPUNGE/VANISHED, then EXISTS and RECENT. Messages
        gone from the mailbox are reported only when `allow_expunge`;
        until then they keep their sequence numbers and last known state."""
        box = self.mailbox
        if box.version == self.seen_version and not (allow_expunge and self._deferred_expunge):
            return []
        current = box.messages()
        delta = box.changes_since(self.seen_version)
        if delta is None:
            fetches, shown, gone = self._diff_all(current, condstore=condstore, qresync=qresync)
        else:
            fetches, shown, gone = self._diff_changes(delta, condstore=condstore, qresync=qresync)
        self._pending_gone |= gone
        out = fetches
        if allow_expunge:
            out.extend(self._expunges(self._pending_gone, qresync))
            self._pending_gone = set()
        self._deferred_expunge = bool(self._pending_gone)
        # New messages (UIDs only grow, RFC 3501 2.3.1.1).
        last = self.last_uid
        if delta is None:
            added = list(compress(current, map(last.__lt__, map(_UID, current))))
        else:
            found = (box.get(u) for u in sorted(u for u in delta[0] if u > last))
            added = [m for m in found if m is not None]
        if added:
            infos, uids = self._own()
            infos.extend(added)
            uids.extend(m.uid for m in added)
            shown.extend(added)
            if not self.read_only:
                self.recent |= set(box.claim_recent())
            else:
                self.recent = self._peek_recent()
            out.append(b"* %d EXISTS\r\n" % len(self.infos))
            if len(self.recent) != self.reported_recent:  # only when it moved, as Dovecot
                self.reported_recent = len(self.recent)
                out.append(b"* %d RECENT\r\n" % len(self.recent))
        out[:0] = self.announce_keywords(shown)
        self.seen_version = box.version
        self._share(current)
        return out

    def _flag_change(self, i: int, new: MessageInfo | None, fetches: list[bytes], shown: list[MessageInfo],
                     condstore: bool, qresync: bool) -> None:
        """Take the mailbox's MessageInfo for view index i; a FETCH when
        its flags moved (only the modseq moving tells nothing)."""
        old = self.infos[i]
        if new is None or new is old or new == old:
            return
        self._own()[0][i] = new
        if new.flags != old.flags:
            shown.append(new)
            fetches.append(self.flags_fetch(i + 1, new, uid=qresync, condstore=condstore))

    def _diff_all(self, current: Sequence[MessageInfo], *, condstore: bool, qresync: bool,
                  ) -> tuple[list[bytes], list[MessageInfo], set[int]]:
        """Compare every message (the mailbox could not say what changed).
        The loops run in C (map, compress): the mailbox makes a new
        MessageInfo only for a message that changed, so identity finds the
        candidates. Returns (flag FETCHes, infos shown, UIDs gone)."""
        by_uid = dict(zip(map(_UID, current), current))
        fetches: list[bytes] = []
        shown: list[MessageInfo] = []
        news = list(map(by_uid.get, self.uids))
        for i in compress(range(len(news)), map(operator.is_not, news, self.infos)):
            self._flag_change(i, news[i], fetches, shown, condstore, qresync)
        gone = set(compress(self.uids, map(operator.not_, map(by_uid.__contains__, self.uids))))
        return fetches, shown, gone

    def _diff_changes(self, delta: tuple[set[int], set[int]], *, condstore: bool, qresync: bool,
                      ) -> tuple[list[bytes], list[MessageInfo], set[int]]:
        """The same from the mailbox's list of what changed: O(changes)."""
        touched, removed = delta
        fetches: list[bytes] = []
        shown: list[MessageInfo] = []
        get = self.mailbox.get
        for seq in sorted(filter(None, map(self.seq_of, touched))):
            self._flag_change(seq - 1, get(self.uids[seq - 1]), fetches, shown, condstore, qresync)
        gone = {u for u in removed if self.seq_of(u)}
        return fetches, shown, gone

    def _expunges(self, gone: set[int], qresync: bool) -> list[bytes]:
        """EXPUNGE (or VANISHED) for what left the mailbox; drops them."""
        out: list[bytes] = []
        if not gone:
            return out
        seqs = sorted(filter(None, map(self.seq_of, gone)))
        if qresync:
            out.append(b"* VANISHED " + format_uid_set([self.uids[q - 1] for q in seqs]).encode() + b"\r\n")
        else:
            # Each EXPUNGE renumbers the rest, so report from the highest
            # sequence number down (the numbers stay right).
            out.extend(b"* %d EXPUNGE\r\n" % q for q in reversed(seqs))
        if len(seqs) <= 64:
            infos, uids = self._own()
            for q in reversed(seqs):
                del infos[q - 1]
                del uids[q - 1]
        else:
            keep = [(u, m) for u, m in zip(self.uids, self.infos) if u not in gone]
            self.uids = [u for u, _ in keep]
            self.infos = [m for _, m in keep]
        if self.recent & gone:
            # Dovecot follows the expunges with the new RECENT count.
            self.recent -= gone
            self.reported_recent = len(self.recent)
            out.append(b"* %d RECENT\r\n" % len(self.recent))
        return out

    def note_modseq(self, modseq: int) -> None:
        """A FETCH response carrying this MODSEQ went out."""
        self.fetched_modseq = max(self.fetched_modseq, modseq)

    def qresync_tagline(self, text: str | None, qresync: bool) -> tuple[bytes, str | None]:
        """After a command (text: its tagged OK text, None in IDLE): with
        QRESYNC, tell the HIGHESTMODSEQ the client can resync from, as
        Dovecot's imap_sync_send_highestmodseq (imap-sync.c, RFC 7162
        3.2.10). Returns an untagged line to send first (or b"") and the
        text, which gets the code when it has none of its own."""
        fetched, self.fetched_modseq = self.fetched_modseq, 0
        if not qresync:
            return b"", text
        now = self.mailbox.highest_modseq
        send = 0
        if self._deferred_expunge:
            # Flag changes of not yet reported expunges went out: the
            # client may only trust the last state we fully reported.
            if fetched > self.last_full_modseq:
                send = self.last_full_modseq
        else:
            if now > self.last_full_modseq and now > fetched:
                send = now  # VANISHED/EXISTS moved it past what FETCHes showed
            self.last_full_modseq = now
        if not send:
            return b"", text
        if text is not None and not text.startswith("["):
            return b"", f"[HIGHESTMODSEQ {send}] {text}"
        return b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % send, text

    # -- keywords in FLAGS / PERMANENTFLAGS -----------------------------------

    def _visible_keywords(self, infos: Sequence[MessageInfo]) -> tuple[str, ...]:
        """The keywords Dovecot's FLAGS lists: those of its index, which
        learns a keyword when a message carries it (a fresh index over a
        Maildir lists only keywords in use, though dovecot-keywords may name
        more) and keeps it after. Kept in the mailbox's keyword order."""
        known = self.mailbox.keywords
        if not known:
            return ()
        used: set[str] = set(self.keywords)
        used.update(*(m.flags for m in infos))
        return tuple(k for k in known if k in used)

    def announce_keywords(self, infos: Sequence[MessageInfo]) -> list[bytes]:
        """FLAGS (and, read-write, PERMANENTFLAGS) again when these messages
        carry keywords the client has not been told of (RFC 3501 7.2.6)."""
        if not infos:
            return []
        wanted = self._visible_keywords(infos)
        if wanted == self.keywords:
            return []
        self.keywords = wanted
        head = [self.flags_line()]
        if not self.read_only:
            head.append(self.permanent_flags_line())
        return head

    def flags_fetch(self, seq: int, info: MessageInfo, *, uid: bool, condstore: bool) -> bytes:
        items = []  # Dovecot's order: UID, MODSEQ, FLAGS
        if uid:
            items.append(b"UID %d" % info.uid)
        if condstore:
            items.append(b"MODSEQ (%d)" % info.modseq)
            self.note_modseq(info.modseq)
        items.append(b"FLAGS " + flag_list(ordered_flags(info.flags, info.uid in self.recent)))
        return b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n"

    def permanent_flags_line(self) -> bytes:
        flags = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft",
                 *self.keywords, "\\*"]
        return b"* OK [PERMANENTFLAGS " + flag_list(flags) + b"] Flags permitted.\r\n"

    def flags_line(self) -> bytes:
        return b"* FLAGS " + flag_list(ordered_flags(["\\Answered", "\\Flagged", "\\Deleted",
                                                      "\\Seen", "\\Draft"]) + list(self.keywords)) + b"\r\n"
