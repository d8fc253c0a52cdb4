"""The storage interfaces that IMAP, POP3 and delivery stand on.

Protocol layers see mail only through `MailStore` (one user's mailboxes) and
`Mailbox` (one folder). The Maildir engine in `storage.maildir` implements
them; nothing above this module knows about files.

Mailbox names here are Unicode `str` with the hierarchy separator of the
store (`/` for LAYOUT=fs, `.` for Maildir++); the IMAP layer converts to and
from modified UTF-7 on the wire. "INBOX" is case-insensitive and always
spelled "INBOX" when returned.

Sessions and sequence numbers are the protocol layer's business: a Mailbox
offers snapshots (`messages()`) and change tracking (`version`,
`wait_for_change`), and each session diffs its own view against them.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# System flags, spelled as IMAP spells them. Keywords are any other atom.
SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
RECENT = "\\Recent"  # session-level; never stored, see Mailbox.claim_recent
SYSTEM_FLAGS = (ANSWERED, FLAGGED, DELETED, SEEN, DRAFT)


class MailboxError(Exception):
    """A storage operation that failed in a way the client should be told.

    `code` is the IMAP response code that fits (RFC 5530), or "".
    """

    code = ""


class NoSuchMailbox(MailboxError):
    code = "NONEXISTENT"


class MailboxExists(MailboxError):
    code = "ALREADYEXISTS"


class InvalidMailboxName(MailboxError):
    code = "CANNOT"


class MailboxInUse(MailboxError):
    code = "INUSE"


class StorageFull(MailboxError):
    """Disk full or quota exceeded: temporary for delivery (4xx)."""

    code = "OVERQUOTA"


class NoSuchMessage(MailboxError):
    """The message was expunged by someone else meanwhile."""

    code = "EXPUNGEISSUED"


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What the index knows about one message; cheap, no file access."""

    uid: int
    flags: frozenset[str]  # system flags ("\\Seen") and keywords; never \Recent
    internal_date: float  # UNIX seconds (the file's mtime, as Dovecot uses it)
    size: int  # RFC 822 size: the size with CRLF line ends (Dovecot's W=)
    modseq: int  # RFC 7162 mod-sequence of the last change to this message
    guid: str = ""  # the Maildir base file name (unique, stable)
    pop3_uidl: str = ""  # a POP3 UIDL saved in dovecot-uidlist ("P" field), else ""


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    messages: int
    recent: int
    uidnext: int
    uidvalidity: int
    unseen: int
    highestmodseq: int
    size: int  # sum of RFC 822 sizes (STATUS SIZE)
    deleted: int = 0


@dataclass(frozen=True, slots=True)
class MailboxEntry:
    """One line of LIST: the name and its attributes.

    `attributes` holds \\Noselect, \\NonExistent, \\HasChildren,
    \\HasNoChildren, \\Marked/\\Unmarked when known; `special_use` holds
    \\Sent, \\Trash, ... from the configuration's `mailbox {}` blocks.
    """

    name: str
    attributes: frozenset[str] = frozenset()
    special_use: frozenset[str] = frozenset()
    subscribed: bool = False


@dataclass(frozen=True, slots=True)
class MessageStructure:
    """What the MIME layer worked out once and the index caches.

    The strings are IMAP syntax, ready to send (as Dovecot caches them).
    """

    envelope: bytes  # the parenthesised ENVELOPE
    body: bytes  # BODY (non-extensible BODYSTRUCTURE)
    bodystructure: bytes  # BODYSTRUCTURE with extension data
    # A few header fields kept for SEARCH/SORT without reading the file.
    headers: dict[str, str] = field(default_factory=dict)


class Mailbox(abc.ABC):
    """One open folder, shared by every session of its user in this process."""

    name: str
    uidvalidity: int
    # Bumped on every change seen (ours or found by sync); lets sessions skip
    # diffing when nothing happened.
    version: int
    read_only: bool = False

    @property
    @abc.abstractmethod
    def uidnext(self) -> int: ...

    @property
    @abc.abstractmethod
    def highest_modseq(self) -> int: ...

    @property
    @abc.abstractmethod
    def keywords(self) -> Sequence[str]:
        """Keywords defined in this mailbox (for FLAGS / PERMANENTFLAGS)."""

    @abc.abstractmethod
    async def sync(self) -> None:
        """Pick up changes made by others (cheap when nothing changed)."""

    @abc.abstractmethod
    def messages(self) -> Sequence[MessageInfo]:
        """Current messages ordered by UID, as of the last sync or change."""

    def message_uids(self) -> Sequence[int]:
        """The UIDs of messages(), in order. A store may hand every caller
        the same immutable sequence (sessions share it rather than each
        holding a copy: an idle session must cost little memory)."""
        return tuple(m.uid for m in self.messages())

    def changes_since(self, version: int) -> tuple[set[int], set[int]] | None:
        """(UIDs added or changed, UIDs removed) since `version`, or None
        when the store cannot tell (the caller then compares everything).
        Lets a session catch up in O(changes) on a big mailbox."""
        return None

    @abc.abstractmethod
    def get(self, uid: int) -> MessageInfo | None: ...

    @abc.abstractmethod
    def claim_recent(self) -> frozenset[int]:
        """UIDs that are \\Recent for the caller: each is handed out once.

        The first session to SELECT (not EXAMINE) after a message arrived
        gets it, as RFC 3501 section 2.3.2 says.
        """

    @abc.abstractmethod
    async def wait_for_change(self, timeout: float) -> bool:
        """Wait until this mailbox may have changed (our own writes, another
        session, a delivery in this or another process). Returns False on
        timeout. Callers then `sync()` and diff."""

    # Content -------------------------------------------------------------

    @abc.abstractmethod
    async def read_message(self, uid: int) -> bytes:
        """The message as stored (line ends as on disk). Runs off the loop.

        Raises NoSuchMessage if it was expunged meanwhile."""

    @abc.abstractmethod
    async def structure(self, uid: int) -> MessageStructure:
        """ENVELOPE/BODYSTRUCTURE, from the index cache when present."""

    # Changes -------------------------------------------------------------

    @abc.abstractmethod
    async def append(
        self,
        data: bytes,
        flags: Iterable[str] = (),
        internal_date: float | None = None,
    ) -> int:
        """Store a message atomically (tmp/ then rename); returns its UID."""

    @abc.abstractmethod
    async def store_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: str,
        unchanged_since: int | None = None,
    ) -> tuple[list[MessageInfo], list[int]]:
        """mode is "set", "add" or "remove". Returns (changed messages with
        their new flags and modseq, uids that failed UNCHANGEDSINCE)."""

    @abc.abstractmethod
    async def expunge(self, uids: Iterable[int] | None = None) -> list[int]:
        """Remove the \\Deleted messages (only those in `uids` if given).
        Returns the UIDs removed, ascending."""

    @abc.abstractmethod
    async def copy_to(self, uids: Iterable[int], dest: Mailbox) -> list[tuple[int, int]]:
        """Copy (hard link where possible); returns (source uid, new uid)
        pairs in source UID order. Flags go along; \\Recent is set anew."""

    async def move_to(self, uids: Iterable[int], dest: Mailbox) -> list[tuple[int, int]]:
        """Copy then expunge the sources (RFC 6851)."""
        pairs = await self.copy_to(uids, dest)
        await self.remove([src for src, _ in pairs])
        return pairs

    @abc.abstractmethod
    async def remove(self, uids: Iterable[int]) -> list[int]:
        """Expunge these messages whatever their flags (MOVE, POP3 DELE)."""

    def status(self) -> MailboxStatus:
        msgs = self.messages()
        unseen = sum(1 for m in msgs if SEEN not in m.flags)
        deleted = sum(1 for m in msgs if DELETED in m.flags)
        return MailboxStatus(
            messages=len(msgs),
            recent=self.recent_count(),
            uidnext=self.uidnext,
            uidvalidity=self.uidvalidity,
            unseen=unseen,
            highestmodseq=self.highest_modseq,
            size=sum(m.size for m in msgs),
            deleted=deleted,
        )

    def recent_count(self) -> int:
        """Messages not yet claimed as \\Recent by any session."""
        return 0


class MailStore(abc.ABC):
    """One user's mailboxes (one namespace: the private inbox namespace)."""

    user: str
    separator: str  # hierarchy separator: "/" for LAYOUT=fs, "." for Maildir++

    @abc.abstractmethod
    async def list_mailboxes(self) -> list[MailboxEntry]:
        """Every mailbox, INBOX first, with attributes and subscription state.
        Includes \\Noselect parents that have no directory of their own."""

    @abc.abstractmethod
    async def create_mailbox(self, name: str, special_use: Iterable[str] = ()) -> None: ...

    @abc.abstractmethod
    async def delete_mailbox(self, name: str) -> None:
        """RFC 3501 6.3.4: a mailbox with children becomes \\Noselect."""

    @abc.abstractmethod
    async def rename_mailbox(self, old: str, new: str) -> None:
        """Children move along; renaming INBOX moves its messages (RFC 3501)."""

    @abc.abstractmethod
    async def subscriptions(self) -> list[str]: ...

    @abc.abstractmethod
    async def subscribe(self, name: str) -> None: ...

    @abc.abstractmethod
    async def unsubscribe(self, name: str) -> None: ...

    @abc.abstractmethod
    async def open_mailbox(self, name: str) -> Mailbox:
        """The shared Mailbox object; raises NoSuchMailbox."""

    async def status(self, name: str) -> MailboxStatus:
        box = await self.open_mailbox(name)
        await box.sync()
        return box.status()

    async def deliver(
        self, data: bytes, mailbox: str = "INBOX", flags: Iterable[str] = (),
        create: bool = False,
    ) -> int:
        """The one entry point for delivery (LMTP, maa-lda, Sieve fileinto).

        Falls back to INBOX when `mailbox` does not exist and `create` is
        false, as Dovecot's LDA does (lda_mailbox_autocreate = no)."""
        try:
            box = await self.open_mailbox(mailbox)
        except NoSuchMailbox:
            if create:
                await self.create_mailbox(mailbox)
                box = await self.open_mailbox(mailbox)
            else:
                box = await self.open_mailbox("INBOX")
        return await box.append(data, flags)
