"""Reading a command's own grammar from the parsed argument tree."""

from __future__ import annotations

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.tokens import Arg, Atom, String


def count(args: list[Arg], lo: int, hi: int | None = None) -> None:
    hi = lo if hi is None else hi
    # Dovecot says "Invalid arguments" for both (imap-commands-util.c).
    if not lo <= len(args) <= hi:
        raise ImapParseError("Invalid arguments")


def string_args(args: list[Arg], n: int) -> list[str]:
    """The first n arguments as astrings, as Dovecot's
    client_read_string_args: fewer is "Missing arguments", a non-string
    "Invalid arguments", and anything after them is ignored (observed:
    `CREATE foo bar` creates foo)."""
    if len(args) < n:
        raise ImapParseError("Missing arguments")
    return [astring(a) for a in args[:n]]


def astring(arg: Arg) -> str:
    """RFC 3501 astring: an atom or a string (quoted or literal)."""
    if isinstance(arg, Atom):
        return arg.value
    if isinstance(arg, String):
        return arg.text()
    raise ImapParseError("Invalid arguments")


def astring_bytes(arg: Arg) -> bytes:
    if isinstance(arg, Atom):
        return arg.value.encode("utf-8", "surrogateescape")
    if isinstance(arg, String):
        return arg.value
    raise ImapParseError("Invalid arguments")


def atom(arg: Arg) -> str:
    if not isinstance(arg, Atom):
        raise ImapParseError("Invalid arguments")
    return arg.value


def number(arg: Arg, *, nonzero: bool = False, bits: int = 32) -> int:
    text = arg.value if isinstance(arg, Atom) else None
    if text is None or not text.isdigit() or not text.isascii():
        raise ImapParseError("Invalid number")
    value = int(text)
    if value >= 1 << bits or (nonzero and value == 0):
        raise ImapParseError("Invalid number")
    return value


def plist(arg: Arg) -> list[Arg]:
    if not isinstance(arg, list):
        raise ImapParseError("Invalid arguments")
    return arg


def flags(arg: Arg) -> list[str]:
    """A flag list `(\\Seen $Forwarded)` or a single flag, validated
    (RFC 3501 9: flag = system flag / keyword atom; \\Recent is not settable)."""
    items = arg if isinstance(arg, list) else [arg]
    out: list[str] = []
    system = {"\\ANSWERED": "\\Answered", "\\FLAGGED": "\\Flagged", "\\DELETED": "\\Deleted",
              "\\SEEN": "\\Seen", "\\DRAFT": "\\Draft"}
    for item in items:
        if not isinstance(item, Atom):
            raise ImapParseError("Flags list contains non-atoms.")
        text = item.value
        if text.startswith("\\"):
            canon = system.get(text.upper())
            if canon is None:
                # \Recent too: "Invalid system flag \RECENT" (observed).
                raise ImapParseError(f"Invalid system flag {text.upper()}")
            out.append(canon)
        else:
            if not text or any(c in '(){%*"\\]' or ord(c) <= 0x20 or ord(c) >= 0x7F for c in text):
                raise ImapParseError(f"Invalid keyword {text}")
            out.append(text)
    # Keep first occurrence order, no duplicates.
    return list(dict.fromkeys(out))
