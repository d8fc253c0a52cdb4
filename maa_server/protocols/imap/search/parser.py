"""Parse SEARCH keys (RFC 3501 6.4.4 and 9 `search-key`) into a SearchProgram.

Also RFC 7162 3.1.5 (MODSEQ), RFC 5032 (OLDER/YOUNGER), RFC 5182 (`$`).
Error texts are Dovecot 2.3's (src/lib-storage/mail-search-register-imap.c,
mail-search-parser-imap.c), captured in dovecot_search.json; the session
prefixes them with "Error in IMAP command SEARCH: ".

CHARSET: Dovecot converts the key strings with iconv and accepts any charset
it knows; we accept any text codec Python knows (windows-1252, ISO-8859-x,
...) and answer `NO [BADCHARSET]` otherwise (RFC 3501 6.4.4).
"""

from __future__ import annotations

import codecs
import datetime
import re
from collections.abc import Sequence

from maa_server.protocols.imap.errors import ImapBadCharset, ImapParseError
from maa_server.protocols.imap.search.program import (
    Age,
    All,
    And,
    Body,
    DateKey,
    HasFlag,
    Header,
    InSequence,
    InUids,
    Key,
    ModSeq,
    Not,
    Or,
    Recent,
    SearchProgram,
    Size,
    Text,
)
from maa_server.protocols.imap.search.text import ADDRESS_HEADERS, fold
from maa_server.protocols.imap.sequence import parse_sequence_set
from maa_server.protocols.imap.tokens import Arg, Atom, String
from maa_server.storage.interface import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
_DATE = re.compile(r"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")
MAX_SIZE = (1 << 63) - 1  # Dovecot's uoff_t limit
MAX_MODSEQ = (1 << 63) - 1  # RFC 7162 mod-sequence-valzer

FLAG_KEYS: dict[str, tuple[str, bool]] = {
    "ANSWERED": (ANSWERED, True), "UNANSWERED": (ANSWERED, False),
    "DELETED": (DELETED, True), "UNDELETED": (DELETED, False),
    "DRAFT": (DRAFT, True), "UNDRAFT": (DRAFT, False),
    "FLAGGED": (FLAGGED, True), "UNFLAGGED": (FLAGGED, False),
    "SEEN": (SEEN, True), "UNSEEN": (SEEN, False),
}
STRING_HEADERS = {"FROM": "from", "TO": "to", "CC": "cc", "BCC": "bcc", "SUBJECT": "subject"}
DATE_KEYS = {
    "BEFORE": (False, "before"), "ON": (False, "on"), "SINCE": (False, "since"),
    "SENTBEFORE": (True, "before"), "SENTON": (True, "on"), "SENTSINCE": (True, "since"),
}
MODSEQ_ENTRY_TYPES = frozenset({"PRIV", "SHARED", "ALL"})


def check_charset(name: str) -> str:
    """The canonical charset name, or ImapBadCharset (NO [BADCHARSET])."""
    upper = name.upper()
    if upper in ("UTF-8", "US-ASCII", "UTF8"):
        return "UTF-8" if upper != "US-ASCII" else "US-ASCII"
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ImapBadCharset("Unknown charset") from None
    # Refuse bytes-to-bytes codecs such as base64 or rot13 that
    # codecs.lookup also knows.
    if not getattr(info, "_is_text_encoding", True):
        raise ImapBadCharset("Unknown charset")
    return name


class _Reader:
    """Walks one level of the Arg list."""

    def __init__(self, args: Sequence[Arg], charset: str) -> None:
        self.args = list(args)
        self.pos = 0
        self.charset = charset

    def more(self) -> bool:
        return self.pos < len(self.args)

    def take(self, key: str) -> Arg:
        if not self.more():
            raise ImapParseError(f"Missing parameter for search key (for search key: {key})")
        arg = self.args[self.pos]
        self.pos += 1
        return arg

    def atom_or_string(self, key: str) -> str:
        """An astring parameter, decoded from the CHARSET."""
        arg = self.take(key)
        if isinstance(arg, Atom):
            return arg.value
        if isinstance(arg, String):
            codec = "utf-8" if self.charset in ("UTF-8", "US-ASCII") else self.charset
            return arg.value.decode(codec, "replace")
        raise ImapParseError(f"Invalid parameter for search key (for search key: {key})")

    def atom(self, key: str) -> str:
        arg = self.take(key)
        if isinstance(arg, Atom):
            return arg.value
        if isinstance(arg, String):
            return arg.text()
        raise ImapParseError(f"Invalid parameter for search key (for search key: {key})")


def parse_search(args: Sequence[Arg], charset: str | None = None) -> SearchProgram:
    """Parse the search keys after SEARCH (and after RETURN (...), which is
    the session's). A leading `CHARSET name` is taken here when the session
    left it in `args`."""
    args = list(args)
    if charset is None and args and isinstance(args[0], Atom) and args[0].upper() == "CHARSET":
        if len(args) < 2 or isinstance(args[1], list):
            raise ImapParseError("Invalid charset argument")
        name = args[1].value if isinstance(args[1], Atom) else args[1].text()
        charset = name
        args = args[2:]
    canonical = check_charset(charset) if charset is not None else "UTF-8"
    if not args:
        raise ImapParseError("Missing search parameters")
    reader = _Reader(args, canonical)
    keys: list[Key] = []
    while reader.more():
        keys.append(_parse_key(reader))
    root = keys[0] if len(keys) == 1 else And(tuple(keys))
    return SearchProgram(root, canonical)


def _parse_list(arg: list[Arg], charset: str) -> Key:
    if not arg:
        raise ImapParseError("No search parameters inside list")
    reader = _Reader(arg, charset)
    keys: list[Key] = []
    while reader.more():
        keys.append(_parse_key(reader))
    return keys[0] if len(keys) == 1 else And(tuple(keys))


def _parse_key(reader: _Reader) -> Key:
    if not reader.more():
        raise ImapParseError("Missing argument")
    arg = reader.args[reader.pos]
    reader.pos += 1
    if isinstance(arg, list):
        return _parse_list(arg, reader.charset)
    if isinstance(arg, String):
        raise ImapParseError(f"Unexpected string as search key: {arg.text()}")
    word = arg.value
    key = word.upper()

    if key == "ALL":
        return All()
    if key in FLAG_KEYS:
        flag, present = FLAG_KEYS[key]
        return HasFlag(flag) if present else Not(HasFlag(flag))
    if key == "RECENT":
        return Recent()
    if key == "NEW":  # RFC 3501: RECENT UNSEEN
        return And((Recent(), Not(HasFlag(SEEN))))
    if key == "OLD":
        return Not(Recent())
    if key in ("KEYWORD", "UNKEYWORD"):
        flag = reader.atom(key)
        node: Key = HasFlag(flag, keyword=True)
        return node if key == "KEYWORD" else Not(node)
    if key in STRING_HEADERS:
        name = STRING_HEADERS[key]
        return Header(name, fold(reader.atom_or_string(key)), name in ADDRESS_HEADERS)
    if key == "HEADER":
        field = reader.atom_or_string(key)
        value = reader.atom_or_string(key)
        lower = field.lower()
        return Header(lower, fold(value), lower in ADDRESS_HEADERS)
    if key == "BODY":
        return Body(fold(reader.atom_or_string(key)))
    if key == "TEXT":
        return Text(fold(reader.atom_or_string(key)))
    if key in ("LARGER", "SMALLER"):
        text = reader.atom(key)
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_SIZE:
            raise ImapParseError("Invalid search size parameter")
        return Size(key == "LARGER", int(text))
    if key in DATE_KEYS:
        sent, op = DATE_KEYS[key]
        return DateKey(sent, op, parse_search_date(reader.atom(key)))
    if key in ("OLDER", "YOUNGER"):
        text = reader.atom(key)
        if not (text.isascii() and text.isdigit()) or int(text) == 0 or int(text) > MAX_SIZE:
            raise ImapParseError("Invalid search interval parameter")
        return Age(key == "OLDER", int(text))
    if key == "NOT":
        return Not(_parse_key(reader))
    if key == "OR":
        left = _parse_key(reader)
        right = _parse_key(reader)
        return Or(left, right)
    if key == "UID":
        text = reader.atom(key)
        try:
            return InUids(parse_sequence_set(text))
        except ImapParseError:
            raise ImapParseError("Invalid UID messageset") from None
    if key == "MODSEQ":
        return _parse_modseq(reader)
    if word == "$":  # RFC 5182: the saved result, kept as UIDs by the session
        return InUids(parse_sequence_set(word))
    if word[:1].isdigit() or word[:1] == "*":
        return InSequence(parse_sequence_set(word))
    raise ImapParseError(f"Unknown argument {key}")


def _parse_modseq(reader: _Reader) -> ModSeq:
    """`MODSEQ ["/flags/\\\\seen" all] 620162338` (RFC 7162 3.1.5). The
    per-flag entry is accepted and, like Dovecot, not used to narrow the
    test: our index keeps one mod-sequence per message."""
    first = reader.take("MODSEQ")
    if isinstance(first, String):
        entry_type = reader.atom("MODSEQ").upper()
        if entry_type not in MODSEQ_ENTRY_TYPES:
            raise ImapParseError("Invalid MODSEQ type")
        first = reader.take("MODSEQ")
    if not isinstance(first, Atom) or not first.value.isascii() or not first.value.isdigit():
        raise ImapParseError("Invalid MODSEQ value")
    value = int(first.value)
    if value > MAX_MODSEQ:
        raise ImapParseError("Invalid MODSEQ value")
    return ModSeq(value)


def parse_search_date(text: str) -> datetime.date | None:
    """`5-Jun-2024` / `05-jun-2024` (RFC 3501 `date`). A well-formed date
    naming a day the month does not have (31-Feb-2024, 0-Jun-2024) is not an
    error for Dovecot, but it then matches nothing (captured); None says so."""
    match = _DATE.match(text)
    if not match or match.group(2).upper() not in MONTHS:
        raise ImapParseError("Invalid search date parameter")
    day, month, year = int(match.group(1)), MONTHS[match.group(2).upper()], int(match.group(3))
    if year < 1:
        raise ImapParseError("Invalid search date parameter")
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None
