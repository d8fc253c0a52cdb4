"""String matching for SEARCH as Dovecot does it without FTS.

Dovecot (lib-mail/message-search.c, lib-charset) compares the decoded text
and the key after mapping both to "decomposed titlecase": case is ignored and
accents are decomposed, so `cafe` finds `café` but `jurgen` does not find
`Jürgen` (captured in tests/unit/imap_fetch/fixtures/dovecot_search.json).
fold() does the same with per-character titlecase and NFD; whitespace is not
compressed (`"on  friday"` finds nothing).

Address fields (FROM/TO/CC/BCC and the other address headers) are matched
against the address list rewritten Dovecot's way (message_address_write):
`"Display Name" <local@domain>` with the name quoted when it holds a space,
`<local@domain>` without a name, joined by ", ", encoded words decoded.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from maa_server.storage.message.address import Address, parse_address_bytes
from maa_server.storage.message.headers import (
    HeaderField,
    decode_rfc2047,
    field_text,
    find_fields,
    parse_header_block,
    unfold,
)
from maa_server.storage.message.parser import MimePart, parse_mime

ADDRESS_HEADERS = frozenset({
    "from", "sender", "reply-to", "to", "cc", "bcc",
    "resent-from", "resent-sender", "resent-to", "resent-cc", "resent-bcc",
})


_TITLECASE: dict[int, str] = {}


def _titlecase_table(text: str) -> dict[int, str]:
    """Per-character simple titlecase (a character whose titlecase is
    several characters, like ß -> Ss, stays itself, as in Dovecot's
    UnicodeData-based mapping)."""
    table: dict[int, str] = {}
    for ch in set(text):
        code = ord(ch)
        mapped = _TITLECASE.get(code)
        if mapped is None:
            title = ch.title()
            mapped = _TITLECASE[code] = title if len(title) == 1 else ch
        table[code] = mapped
    return table


def fold(text: str) -> str:
    """The comparison form of a key or a haystack: Dovecot's decomposed
    titlecase (lib/unichar.c uni_utf8_to_decomposed_titlecase)."""
    if text.isascii():
        return text.upper()
    return unicodedata.normalize("NFD", text.translate(_titlecase_table(text)))


_TAB_FOLD = re.compile(rb"\r?\n\t")


def oneline(value: bytes) -> str:
    """A header value as Dovecot's search sees it: unfolded with
    MESSAGE_HEADER_PARSER_FLAG_CLEAN_ONELINE, where a tab that starts a
    continuation line becomes a space (captured: "first part<LF><TAB>second
    part" is found by "part second"), then RFC 2047-decoded."""
    return field_text(_TAB_FOLD.sub(b" ", value))


def header_fields(raw: bytes) -> list[HeaderField]:
    """The message's top-level header fields (Dovecot's header parser)."""
    fields, _, _ = parse_header_block(raw, 0, len(raw))
    return fields


def _quote_name(name: bytes) -> bytes:
    # Dovecot's str_append_maybe_escape(quote_spaces=TRUE).
    if any(ch in name for ch in b' "\\'):
        return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return name


def normalized_addresses(value: bytes) -> str:
    """The address list as Dovecot writes it before matching
    (message_address_parse with fill_missing, then message_address_write,
    then RFC 2047 decoding)."""
    return write_addresses(parse_address_bytes(unfold(value), fill_missing=True))


def write_addresses(addresses: Iterable[Address]) -> str:
    """Dovecot's message_address_write of parsed addresses, decoded."""
    out = bytearray()
    first = True
    in_group = False
    for addr in addresses:
        if addr.domain is None:
            # Groups as captured: "team: <a@b>, <c@d>;" and, when empty,
            # "undisclosed-recipients:;".
            if not in_group:
                if not first:
                    out += b", "
                out += (addr.mailbox or b"") + b":"
                first = True
            else:
                out += b";"
                first = False
            in_group = not in_group
            continue
        if not first:
            out += b", "
        elif in_group:
            out += b" "
        first = False
        if not addr.name and addr.route is None:
            out += b"<" + (addr.mailbox or b"") + b"@" + addr.domain + b">"
        else:
            if addr.name:
                out += _quote_name(addr.name) + b" "
            out += b"<"
            if addr.route is not None:
                out += addr.route + b":"
            out += (addr.mailbox or b"") + b"@" + addr.domain + b">"
    return decode_rfc2047(bytes(out))


def header_haystacks(fields: list[HeaderField], name: str) -> list[str] | None:
    """Folded strings to look in for `HEADER name`, or None without the field."""
    found = find_fields(fields, name)
    if not found:
        return None
    if name in ADDRESS_HEADERS:
        return [fold(normalized_addresses(f.value)) for f in found]
    return [fold(oneline(f.value)) for f in found]


def _walk(part: MimePart) -> list[MimePart]:
    out = [part]
    for child in part.children:
        out.extend(_walk(child))
    return out


def all_headers_text(raw: bytes, root: MimePart | None = None) -> str:
    """Every header block of the message, its parts and embedded messages,
    decoded, one `Name: value` per line: the header half of SEARCH TEXT.
    `root`: the part tree when the caller has parsed it already."""
    lines = [f"{f.name}: {oneline(f.value)}"
             for part in _walk(parse_mime(raw) if root is None else root) for f in part.fields]
    return "\n".join(lines)
