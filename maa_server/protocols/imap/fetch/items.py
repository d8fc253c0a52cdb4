"""FETCH data items: parse the client's item list into a FetchRequest.

Grammar: RFC 3501 section 6.4.5 and 9 (`fetch-att`, `section`), RFC 3516
(BINARY[], BINARY.PEEK[], BINARY.SIZE[]), RFC 7162 section 3.1.4 (MODSEQ item,
CHANGEDSINCE and VANISHED modifiers). The wording of the errors and the small
liberties (part number 0, `<start>` partials without a length) are the real
Dovecot 2.3's (src/imap/imap-fetch.c, imap-fetch-body.c), captured in
tests/unit/imap_fetch/fixtures/dovecot_fetch.json.

The IMAP line parser hands a section such as
`BODY.PEEK[HEADER.FIELDS (From "Subject")]<0.100>` over as ONE Atom, so the
section grammar is parsed here from its text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.tokens import Arg, Atom

# Items whose output Dovecot buffers and sends before any body data (the
# IMAP_FETCH_HANDLER_FLAG_BUFFERED handlers of imap-fetch.c), in request order.
BUFFERED = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ",
                      "PREVIEW", "SNIPPET"})

SIMPLE_ITEMS = frozenset({
    "UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ",
    "ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT",
    "PREVIEW", "SNIPPET",
})
# Items made from the message file (the others come from the index).
CONTENT_ITEMS = frozenset({"RFC822", "RFC822.HEADER", "RFC822.TEXT", "PREVIEW", "SNIPPET"})
# RFC 8970 PREVIEW (LAZY) and Dovecot's SNIPPET (FUZZY): the modifiers
# imap-fetch.c takes for either.
PREVIEW_MODIFIERS = frozenset({"LAZY", "FUZZY"})

# RFC 3501 6.4.5 macros; Dovecot refuses them inside a list ("Unknown parameter").
MACROS: dict[str, tuple[str, ...]] = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}

SECTION_NAMES = ("BODY.PEEK", "BODY", "BINARY.PEEK", "BINARY.SIZE", "BINARY")

# Dovecot's texts (imap-fetch-body.c) for a broken section.
BAD_SECTION = "Invalid BODY[..] section"
BAD_PARAMETER = "Invalid BODY[..] parameter: "

MAX_NUMBER = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class SimpleItem:
    """A data item without a section: FLAGS, UID, ENVELOPE, RFC822, ..."""

    name: str

    @property
    def buffered(self) -> bool:
        return self.name in BUFFERED


@dataclass(frozen=True, slots=True)
class SectionItem:
    """BODY[...] / BODY.PEEK[...] / BINARY[...] / BINARY.PEEK[...] / BINARY.SIZE[...].

    `part` is the section-part (() for the whole message), `spec` one of "",
    "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME";
    `fields` the header names as the MIME layer wants them; `wire_fields`
    the same names as Dovecot echoes them (upper-cased, quotes kept).
    """

    kind: str  # "BODY", "BINARY" or "BINARY.SIZE"
    peek: bool
    part: tuple[int, ...] = ()
    spec: str = ""
    fields: tuple[str, ...] = ()
    wire_fields: tuple[str, ...] = ()
    partial_start: int | None = None
    partial_length: int | None = None  # None with a start: up to the end

    buffered = False

    @property
    def section_text(self) -> str:
        """What goes between the brackets in the response."""
        text = ".".join(str(n) for n in self.part)
        if self.spec:
            text = f"{text}.{self.spec}" if text else self.spec
        if self.spec in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            text += " (" + " ".join(self.wire_fields) + ")"
        return text

    @property
    def response_name(self) -> str:
        """`BODY[1.MIME]`, `BINARY[2]<4>`: the name the answer carries
        (RFC 3501 7.4.2: the partial shows only its start)."""
        name = f"{self.kind}[{self.section_text}]"
        if self.partial_start is not None and self.kind != "BINARY.SIZE":
            name += f"<{self.partial_start}>"
        return name

    @property
    def sets_seen(self) -> bool:
        return self.kind != "BINARY.SIZE" and not self.peek


FetchItem = SimpleItem | SectionItem


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """A parsed FETCH: what to send, what it costs, what it changes.

    `items` are deduplicated where Dovecot deduplicates (simple items) and in
    request order; render_fetch puts the buffered ones first as Dovecot does.
    """

    items: tuple[FetchItem, ...]
    changedsince: int | None = None
    vanished: bool = False
    names: frozenset[str] = field(default_factory=frozenset)

    @property
    def wants_modseq(self) -> bool:
        """MODSEQ is sent: asked for, or implied by CHANGEDSINCE (RFC 7162 3.1.4.1)."""
        return "MODSEQ" in self.names or self.changedsince is not None

    @property
    def sets_seen(self) -> bool:
        """BODY[...] (not PEEK), BINARY[...], RFC822 and RFC822.TEXT set \\Seen
        (RFC 3501 6.4.5, RFC 3516 4.1)."""
        return any(
            (isinstance(i, SimpleItem) and i.name in ("RFC822", "RFC822.TEXT"))
            or (isinstance(i, SectionItem) and i.sets_seen)
            for i in self.items
        )

    @property
    def needs_content(self) -> bool:
        """The message file must be read."""
        return any(isinstance(i, SectionItem) or i.name in CONTENT_ITEMS for i in self.items)

    @property
    def needs_structure(self) -> bool:
        """ENVELOPE / BODY / BODYSTRUCTURE (cached by the index)."""
        return bool(self.names & {"ENVELOPE", "BODY", "BODYSTRUCTURE"})


def parse_fetch_items(arg: Arg, modifiers: Mapping[str, object] | None = None) -> FetchRequest:
    """Parse the FETCH item argument: a macro atom, one item, or a list of items.

    `modifiers` is what parse_fetch_modifiers returned (or None). Raises
    ImapParseError with Dovecot's text for anything malformed.
    """
    items: list[FetchItem] = []
    if isinstance(arg, Atom):
        upper = arg.value.upper()
        if upper in MACROS:
            items.extend(SimpleItem(n) for n in MACROS[upper])
        else:
            items.append(_parse_item(arg.value))
    elif isinstance(arg, list):
        if not arg:
            raise ImapParseError("FETCH list is empty")
        for i, element in enumerate(arg):
            if isinstance(element, list) and i and isinstance(arg[i - 1], Atom) \
                    and arg[i - 1].value.upper() in ("PREVIEW", "SNIPPET"):
                _check_preview_modifiers(element)
                continue
            if not isinstance(element, Atom):
                raise ImapParseError("FETCH list contains non-atoms.")
            items.append(_parse_item(element.value))
    else:
        raise ImapParseError("Invalid arguments")

    unique: list[FetchItem] = []
    seen_simple: set[str] = set()
    for item in items:
        if isinstance(item, SimpleItem):
            # Dovecot registers one handler per simple item (imap_fetch_add_handler).
            if item.name in seen_simple:
                continue
            seen_simple.add(item.name)
        unique.append(item)

    changedsince: int | None = None
    vanished = False
    if modifiers:
        for key, value in modifiers.items():
            name = key.upper()
            if name == "CHANGEDSINCE" and isinstance(value, int) and not isinstance(value, bool):
                changedsince = value
            elif name == "VANISHED":
                vanished = True
            else:
                raise ImapParseError("Unknown FETCH modifier")
    if vanished and changedsince is None:
        # RFC 7162 3.2.6: VANISHED without CHANGEDSINCE is a protocol error.
        raise ImapParseError("VANISHED used without CHANGEDSINCE")
    return FetchRequest(tuple(unique), changedsince, vanished, frozenset(seen_simple))


def _check_preview_modifiers(modifiers: list[Arg]) -> None:
    """`PREVIEW (LAZY)`: we always compute the preview, so LAZY changes
    nothing; anything else gets Dovecot's answer (it says PREVIEW for
    SNIPPET too, observed)."""
    for modifier in modifiers:
        name = modifier.value if isinstance(modifier, Atom) else "?"
        if name.upper() not in PREVIEW_MODIFIERS:
            raise ImapParseError(f"'{name}' is not a supported PREVIEW modifier")


def parse_fetch_modifiers(arg: Arg, *, qresync: bool = False, uid: bool = False) -> dict[str, object]:
    """The optional `(CHANGEDSINCE 5 VANISHED)` list after the items
    (RFC 4466 fetch-modifier, RFC 7162 3.1.4 and 3.2.6). VANISHED exists
    only for UID FETCH ("Unknown FETCH modifier" otherwise) and needs
    QRESYNC enabled ("QRESYNC not enabled"), as Dovecot's imap-fetch.c."""
    if not isinstance(arg, list):
        raise ImapParseError("Invalid arguments")
    out: dict[str, object] = {}
    i = 0
    while i < len(arg):
        element = arg[i]
        if not isinstance(element, Atom):
            raise ImapParseError("Unknown FETCH modifier")
        name = element.value.upper()
        if name == "CHANGEDSINCE":
            if i + 1 >= len(arg) or not isinstance(arg[i + 1], Atom):
                raise ImapParseError("Invalid CHANGEDSINCE modseq")
            value = _number_atom(arg[i + 1])
            if value is None or value > 0x7FFFFFFFFFFFFFFF:
                raise ImapParseError("Invalid CHANGEDSINCE modseq")
            out["CHANGEDSINCE"] = value
            i += 2
        elif name == "VANISHED" and uid:
            if not qresync:
                raise ImapParseError("QRESYNC not enabled")
            out["VANISHED"] = True
            i += 1
        else:
            raise ImapParseError("Unknown FETCH modifier")
    return out


def _number_atom(arg: Arg) -> int | None:
    if isinstance(arg, Atom) and arg.value.isascii() and arg.value.isdigit():
        return int(arg.value)
    return None


def _parse_item(text: str) -> FetchItem:
    upper = text.upper()
    if upper in SIMPLE_ITEMS:
        return SimpleItem(upper)
    bracket = upper.find("[")
    name = upper if bracket < 0 else upper[:bracket]
    if name not in SECTION_NAMES:
        if upper.startswith("RFC822."):  # Dovecot's own wording (imap-fetch.c)
            raise ImapParseError(f"Unknown parameter {upper}")
        raise ImapParseError(f"Unknown parameter: {upper}")
    if bracket < 0:
        raise ImapParseError(BAD_PARAMETER + "Missing '['")
    close = _find_close(text, bracket + 1)
    if close < 0:
        raise ImapParseError(BAD_PARAMETER + "Missing ']'")
    kind = "BODY" if name.startswith("BODY") else (
        "BINARY.SIZE" if name == "BINARY.SIZE" else "BINARY")
    peek = name.endswith(".PEEK")
    part, spec, fields, wire = _parse_section(text[bracket + 1:close])
    if kind != "BODY" and spec not in ("", "HEADER", "TEXT", "MIME"):
        # RFC 3516 allows only a part number; Dovecot also takes HEADER, TEXT
        # and MIME (captured: BINARY.PEEK[HEADER], BINARY.PEEK[1.MIME]).
        raise ImapParseError(BAD_SECTION)
    start, length = _parse_partial(text[close + 1:])
    if kind == "BINARY.SIZE":
        # Dovecot accepts and ignores a partial here (captured).
        start = length = None
    return SectionItem(kind, peek, part, spec, fields, wire, start, length)


def _find_close(text: str, pos: int) -> int:
    """Index of the `]` that ends the section, skipping quoted field names."""
    quoted = False
    while pos < len(text):
        ch = text[pos]
        if quoted:
            if ch == "\\":
                pos += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "]":
            return pos
        pos += 1
    return -1


def _parse_section(
    inner: str,
) -> tuple[tuple[int, ...], str, tuple[str, ...], tuple[str, ...]]:
    """section-spec: `1.2.HEADER.FIELDS (A B)`, `TEXT`, `3.MIME`, `` ..."""
    if not inner:
        return (), "", (), ()
    head, sp, rest = inner.partition(" ")
    if "(" in head or ")" in head:  # the line parser's word for it
        raise ImapParseError("Invalid characters in atom")
    if sp and not rest.strip(" "):
        raise ImapParseError("Invalid arguments")
    dotted = head.split(".")
    part: list[int] = []
    while dotted and dotted[0].isascii() and dotted[0].isdigit():
        number = int(dotted.pop(0))
        if number > MAX_NUMBER:
            raise ImapParseError(BAD_SECTION)
        part.append(number)
    spec = ".".join(dotted).upper()
    fields: tuple[str, ...] = ()
    wire: tuple[str, ...] = ()
    if spec in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        if not sp:
            raise ImapParseError(BAD_SECTION)
        fields, wire = _parse_header_list(rest)
    elif sp:
        raise ImapParseError(BAD_SECTION)
    elif spec == "MIME":
        if not part:  # RFC 3501 9: MIME only follows a part number
            raise ImapParseError(BAD_SECTION)
    elif spec not in ("", "HEADER", "TEXT"):
        raise ImapParseError(BAD_SECTION)
    return tuple(part), spec, fields, wire


def _parse_header_list(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`(From "Subject")` -> (("From", "Subject"), ("FROM", '"SUBJECT"'))."""
    text = text.strip(" ")
    if text[:1] == "(" and text[-1:] != ")":
        raise ImapParseError("Missing ')'")
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise ImapParseError(BAD_SECTION)
    body = text[1:-1]
    names: list[str] = []
    wire: list[str] = []
    pos = 0
    while pos < len(body):
        if body[pos] == " ":
            pos += 1
            continue
        if body[pos] == '"':
            end = pos + 1
            value = []
            while end < len(body) and body[end] != '"':
                if body[end] == "\\" and end + 1 < len(body):
                    end += 1
                value.append(body[end])
                end += 1
            if end >= len(body):
                raise ImapParseError(BAD_SECTION)
            name = "".join(value)
            token = body[pos:end + 1]
            pos = end + 1
        else:
            end = body.find(" ", pos)
            end = len(body) if end < 0 else end
            token = name = body[pos:end]
            pos = end
        if not _valid_field_name(name):
            raise ImapParseError(BAD_SECTION)
        names.append(name)
        wire.append(token.upper())
    if not names:
        raise ImapParseError(BAD_SECTION)
    return tuple(names), tuple(wire)


def _valid_field_name(name: str) -> bool:
    """An IMAP astring of printable US-ASCII. Dovecot does not insist on
    RFC 5322 ftext (captured: `HEADER.FIELDS (Subject:)` is answered, empty)."""
    return bool(name) and all(33 <= ord(ch) <= 126 for ch in name) \
        and "(" not in name and ")" not in name


def _parse_partial(text: str) -> tuple[int | None, int | None]:
    """`<start.length>`; Dovecot also takes `<start>` (to the end)."""
    if not text:
        return None, None
    if text[0] != "<":
        raise ImapParseError(BAD_PARAMETER + "Unexpected data after ']'")
    if text[-1] != ">":
        raise ImapParseError(BAD_PARAMETER + "Missing '>'")
    start_s, dot, length_s = text[1:-1].partition(".")
    if not (start_s.isascii() and start_s.isdigit()) or int(start_s) > MAX_NUMBER:
        raise ImapParseError(BAD_PARAMETER + "Too big partial start")
    if not dot:
        return int(start_s), None
    if not (length_s.isascii() and length_s.isdigit()) or int(length_s) > MAX_NUMBER:
        raise ImapParseError(BAD_PARAMETER + "Too big partial end")
    return int(start_s), int(length_s)


__all__ = [
    "FetchItem", "FetchRequest", "SectionItem", "SimpleItem",
    "parse_fetch_items", "parse_fetch_modifiers",
]
