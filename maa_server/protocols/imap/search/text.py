"""String matching for SEARCH as Dovecot does it without FTS.

Dovecot (lib-mail/message-search.c, lib-charset) compares the decoded text
and the key after mapping both to "decomposed titlecase": case is ignored and
accents are decomposed, so `cafe` finds `café` but `jurgen` does not find
`Jürgen` (captured in tests/unit/imap_fetch/fixtures/dovecot_search.json).
We fold with str.casefold() then NFD, which gives the same answers on those
cases; whitespace is not compressed (`"on  friday"` finds nothing).

Address fields (FROM/TO/CC/BCC and the other address headers) are matched
against the address list rewritten Dovecot's way (message_address_write):
`"Display Name" <local@domain>` with the name quoted when it holds a space,
`<local@domain>` without a name, joined by ", ", encoded words decoded.
"""

from __future__ import annotations

import email.errors
import email.header
import email.utils
import re
import unicodedata
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

ADDRESS_HEADERS = frozenset({
    "from", "sender", "reply-to", "to", "cc", "bcc",
    "resent-from", "resent-sender", "resent-to", "resent-cc", "resent-bcc",
})

_FOLD = re.compile(r"\r?\n(?=[ \t])")


def fold(text: str) -> str:
    """The comparison form of a key or a haystack."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFD", text.casefold())


def decode_words(value: str) -> str:
    """RFC 2047 encoded words to text; undecodable charsets left as they are."""
    if "=?" not in value:
        return value
    try:
        parts = email.header.decode_header(value)
        out = []
        for data, charset in parts:
            if isinstance(data, str):
                out.append(data)
                continue
            try:
                out.append(data.decode(charset or "utf-8", "replace"))
            except LookupError:
                out.append(data.decode("utf-8", "replace"))
        return "".join(out)
    except (ValueError, email.errors.HeaderParseError):
        return value


def unfold(value: str) -> str:
    return _FOLD.sub("", value).strip("\r\n")


def raw_header_values(header_block: bytes, name: str) -> list[str]:
    """Every value of the field `name` in a raw header block, unfolded but
    not decoded (8-bit bytes read as UTF-8, else Latin-1)."""
    text = _bytes_to_text(header_block)
    wanted = name.lower()
    values: list[str] = []
    current: list[str] | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t"):
            if current is not None:
                current.append(line)
            continue
        if current is not None:
            values.append("".join(current).strip())
            current = None
        key, colon, value = line.partition(":")
        if colon and key.strip().lower() == wanted:
            current = [value]
    if current is not None:
        values.append("".join(current).strip())
    return values


def _bytes_to_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _quote_name(name: str) -> str:
    # Dovecot's str_append_maybe_escape(quote_spaces=TRUE).
    if any(ch in name for ch in ' "\\'):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def normalized_addresses(raw_value: str) -> str:
    """The address list as Dovecot writes it before matching."""
    out = []
    for name, addr in email.utils.getaddresses([raw_value]):
        if not name and not addr:
            continue
        if name:
            out.append(f"{_quote_name(name)} <{addr}>")
        else:
            out.append(f"<{addr}>")
    return decode_words(", ".join(out))


def header_haystacks(header_block: bytes, name: str) -> list[str] | None:
    """Folded strings to look in for `HEADER name`, or None without the field."""
    values = raw_header_values(header_block, name)
    if not values:
        return None
    if name in ADDRESS_HEADERS:
        return [fold(normalized_addresses(v)) for v in values]
    return [fold(decode_words(v)) for v in values]


def all_headers_text(raw: bytes) -> str:
    """Every header block of the message, its parts and embedded messages,
    decoded, one `Name: value` per line: the header half of SEARCH TEXT."""
    lines: list[str] = []
    parsed: Message = message_from_bytes(raw, policy=compat32)
    for part in parsed.walk():
        for key, value in part.items():
            lines.append(f"{key}: {decode_words(unfold(str(value)))}")
    return "\n".join(lines)
