"""The parsed form of a SEARCH: a small tree of frozen key nodes.

One node type per kind of test (RFC 3501 6.4.4, RFC 7162 3.1.5, RFC 5032);
NEW, OLD and the UN* keys are expressed with Not/And over these, as Dovecot
does in mail-search-register-imap.c.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Union

from maa_server.protocols.imap.sequence import SequenceSet


@dataclass(frozen=True, slots=True)
class All:
    pass


@dataclass(frozen=True, slots=True)
class HasFlag:
    """A system flag (`\\Seen`) or, with keyword=True, a keyword compared
    case-insensitively as Dovecot's keyword index does."""

    flag: str
    keyword: bool = False


@dataclass(frozen=True, slots=True)
class Recent:
    pass


@dataclass(frozen=True, slots=True)
class InSequence:
    numbers: SequenceSet


@dataclass(frozen=True, slots=True)
class InUids:
    uids: SequenceSet


@dataclass(frozen=True, slots=True)
class Size:
    larger: bool  # LARGER n: size > n; SMALLER n: size < n
    size: int


@dataclass(frozen=True, slots=True)
class DateKey:
    """BEFORE/ON/SINCE (internal date) and SENT* (Date: header), compared by
    calendar day only (RFC 3501: "disregarding time and timezone")."""

    sent: bool
    op: str  # "before", "on", "since"
    day: datetime.date | None  # None: a day the month lacks; matches nothing


@dataclass(frozen=True, slots=True)
class Age:
    """RFC 5032 OLDER/YOUNGER: internal date against now - seconds."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class ModSeq:
    """RFC 7162 3.1.5: messages with a mod-sequence >= value."""

    modseq: int


@dataclass(frozen=True, slots=True)
class Header:
    """FROM/TO/CC/BCC/SUBJECT/HEADER: substring of a decoded header field.

    `needle` is already folded (see search.text.fold); "" tests existence.
    `address` fields match against the normalised address list, as
    Dovecot's SEARCH_HEADER_ADDRESS does (index-search.c)."""

    name: str  # lower-case field name
    needle: str
    address: bool = False


@dataclass(frozen=True, slots=True)
class Body:
    needle: str


@dataclass(frozen=True, slots=True)
class Text:
    needle: str


@dataclass(frozen=True, slots=True)
class Not:
    key: Key


@dataclass(frozen=True, slots=True)
class Or:
    left: Key
    right: Key


@dataclass(frozen=True, slots=True)
class And:
    keys: tuple[Key, ...]


Key = Union[  # noqa: UP007 - a runtime alias of forward references
    All, HasFlag, Recent, InSequence, InUids, Size, DateKey, Age, ModSeq,
    Header, Body, Text, Not, Or, And]

CONTENT_KEYS = (Header, Body, Text)


def walk(key: Key) -> list[Key]:
    """Every node of the tree, depth first."""
    out: list[Key] = [key]
    if isinstance(key, Not):
        out.extend(walk(key.key))
    elif isinstance(key, Or):
        out.extend(walk(key.left))
        out.extend(walk(key.right))
    elif isinstance(key, And):
        for sub in key.keys:
            out.extend(walk(sub))
    return out


@dataclass(frozen=True, slots=True)
class SearchProgram:
    """A parsed SEARCH. `uses_modseq` tells the session to append
    `(MODSEQ n)` to the answer (RFC 7162 3.1.5); `uses_saved` that `$`
    (RFC 5182) appears; `charset` is the CHARSET the strings were in."""

    root: Key
    charset: str = "UTF-8"

    @property
    def nodes(self) -> list[Key]:
        return walk(self.root)

    @property
    def uses_modseq(self) -> bool:
        return any(isinstance(n, ModSeq) for n in self.nodes)

    @property
    def uses_saved(self) -> bool:
        return any(isinstance(n, (InSequence, InUids)) and
                   (n.numbers.saved if isinstance(n, InSequence) else n.uids.saved)
                   for n in self.nodes)

    @property
    def needs_content(self) -> bool:
        """Some key needs the message's header or body (else only the index)."""
        return any(isinstance(n, CONTENT_KEYS) or (isinstance(n, DateKey) and n.sent)
                   for n in self.nodes)
