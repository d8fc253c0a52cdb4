"""The generic argument tree an IMAP command line parses into.

Like Dovecot's IMAP_ARG list: the line parser knows only atoms, strings
(quoted or literal), NIL-as-atom and parenthesised lists; each command's own
grammar (FETCH items, SEARCH keys, STORE flags) is read from this tree.

One exception, as in every IMAP server: a FETCH section such as
`BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100>` arrives as ONE Atom with
its brackets, inner spaces and partial kept verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class Atom:
    value: str  # as sent; commands compare case-insensitively where the RFC says so

    def upper(self) -> str:
        return self.value.upper()


@dataclass(frozen=True, slots=True)
class String:
    value: bytes  # quoted string content (unescaped) or literal bytes
    literal: bool = False

    def text(self) -> str:
        return self.value.decode("utf-8", "surrogateescape")


Arg = Union[Atom, String, list["Arg"]]
