"""ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 7.4.2) rendered as Dovecot 2.3 does.

Sources: src/lib-imap/imap-envelope.c and imap-bodystructure.c. Sizes are
counted as if every bare LF were CRLF (RFC 3501 body-fld-octets are for the
message as sent); body-fld-lines counts LFs.
"""

from __future__ import annotations

from collections.abc import Sequence

from .address import Address, parse_address_bytes
from .content import ContentInfo
from .headers import HeaderField
from .imap_quote import NIL, nstring, nstring_nolf, string_for_humans
from .parser import MULTIPART, RFC822, MimePart

# A multipart without parts is not allowed; Dovecot writes one empty text part.
EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
EMPTY_BODYSTRUCTURE = (
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
)

_ADDRESS_FIELDS = ("from", "sender", "reply-to", "to", "cc", "bcc")


def crlf_size_range(raw: bytes, start: int, end: int) -> int:
    """Size of raw[start:end] with bare LFs counted as CRLF."""
    if end <= start:
        return 0
    lf = raw.count(b"\n", start, end)
    if not lf:
        return end - start
    return end - start + lf - raw.count(b"\r\n", start, end)


def _clean(value: bytes) -> bytes:
    return value.replace(b"\x00", b"\xef\xbf\xbd") if b"\x00" in value else value


def envelope(fields: Sequence[HeaderField]) -> bytes:
    """RFC 3501 ENVELOPE of a message header."""
    strings: dict[str, bytes] = {}
    addrs: dict[str, list[Address]] = {}
    for f in fields:
        ln = f.lname
        if ln in ("date", "subject", "in-reply-to", "message-id"):
            strings[ln] = _clean(f.value)  # the last one wins, as in Dovecot
        elif ln in _ADDRESS_FIELDS:
            # Repeated address fields add up.
            # Dovecot parses addresses as a C string: a NUL ends the value.
            value = f.value.split(b"\x00", 1)[0]
            addrs.setdefault(ln, []).extend(parse_address_bytes(value))
    subject = strings.get("subject")
    out = [
        b"(",
        nstring_nolf(strings.get("date")),
        b" ",
        NIL if subject is None else string_for_humans(subject),
    ]
    from_ = addrs.get("from")
    for name in _ADDRESS_FIELDS:
        lst = addrs.get(name)
        if not lst and name in ("sender", "reply-to"):
            lst = from_  # RFC 3501 7.4.2: default to From
        out.append(b" ")
        out.append(_address_list(lst))
    out += [
        b" ",
        nstring_nolf(strings.get("in-reply-to")),
        b" ",
        nstring_nolf(strings.get("message-id")),
        b")",
    ]
    return b"".join(out)


def _address_list(lst: list[Address] | None) -> bytes:
    if not lst:
        return NIL
    parts = [b"("]
    for a in lst:
        parts.append(b"(")
        parts.append(NIL if a.name is None else string_for_humans(a.name))
        parts.append(b" ")
        parts.append(nstring(a.route))
        parts.append(b" ")
        parts.append(nstring(a.mailbox))
        parts.append(b" ")
        parts.append(nstring(a.domain))
        parts.append(b")")
    parts.append(b")")
    return b"".join(parts)


def _params(params: list[tuple[bytes, bytes]], default_charset: bool) -> bytes:
    if not params and not default_charset:
        return NIL
    items: list[bytes] = []
    seen_charset = False
    for k, v in params:
        if default_charset and k.lower() == b"charset":
            seen_charset = True
        items.append(nstring(k) + b" " + nstring(v))
    if default_charset and not seen_charset:
        items.append(b'"charset" "us-ascii"')
    return b"(" + b" ".join(items) + b")"


def _disposition(info: ContentInfo) -> bytes:
    if info.disposition is None:
        return NIL
    return (
        b"("
        + nstring(info.disposition)
        + b" "
        + _params(info.disposition_params, False)
        + b")"
    )


def _language(info: ContentInfo) -> bytes:
    if not info.language:
        return NIL
    return b"(" + b" ".join(nstring(x) for x in info.language) + b")"


def _extension(info: ContentInfo) -> bytes:
    return (
        b" "
        + _disposition(info)
        + b" "
        + _language(info)
        + b" "
        + nstring_nolf(info.location)
    )


class StructureWriter:
    """Renders BODY / BODYSTRUCTURE for a parsed part tree (one message)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        # (size, lines) per part: BODY and BODYSTRUCTURE both need them.
        self._sizes: dict[int, tuple[int, int]] = {}
        self._envelopes: dict[int, bytes] = {}

    def _size_lines(self, part: MimePart) -> tuple[int, int]:
        key = id(part)
        got = self._sizes.get(key)
        if got is None:
            raw, start, end = self.raw, part.body_start, part.end
            if end <= start:
                got = (0, 0)
            else:
                lf = raw.count(b"\n", start, end)
                crlf = raw.count(b"\r\n", start, end) if lf else 0
                got = (end - start + lf - crlf, lf)
            self._sizes[key] = got
        return got

    def write(self, part: MimePart, extended: bool) -> bytes:
        out: list[bytes] = []
        self._part(part, extended, out)
        return b"".join(out)

    def _part(self, part: MimePart, extended: bool, out: list[bytes]) -> None:
        info = part.info
        if part.kind == MULTIPART:
            out.append(b"(")
            if part.children:
                for child in part.children:
                    self._part(child, extended, out)
            else:
                out.append(EMPTY_BODYSTRUCTURE if extended else EMPTY_BODY)
            out.append(b" ")
            out.append(nstring(info.subtype))
            if extended:
                out.append(b" ")
                out.append(_params(info.params, False))
                out.append(_extension(info))
            out.append(b")")
            return
        if info.overflow:
            # Dovecot: a container it would not descend into is opaque data.
            type_pair = b'"application" "octet-stream"'
            text = False
        elif part.kind == RFC822:
            type_pair = b'"message" "rfc822"'
            text = False
        elif info.ctype is None:
            type_pair = b'"text" "plain"'
            text = True
        else:
            type_pair = nstring(info.ctype) + b" " + nstring(info.subtype or b"")
            text = info.is_text
        out.append(b"(")
        out.append(type_pair)
        out.append(b" ")
        out.append(_params(info.params, text))
        out.append(b" ")
        out.append(nstring_nolf(info.content_id))
        out.append(b" ")
        out.append(nstring_nolf(info.description))
        out.append(b" ")
        out.append(b'"7bit"' if info.encoding is None else nstring(info.encoding))
        size, lines = self._size_lines(part)
        out.append(b" %d" % size)
        if part.kind == RFC822 and part.children:
            child = part.children[0]
            out.append(b" ")
            env = self._envelopes.get(id(child))
            if env is None:
                env = self._envelopes[id(child)] = envelope(child.fields)
            out.append(env)
            out.append(b" ")
            self._part(child, extended, out)
            out.append(b" %d" % lines)
        elif text:
            out.append(b" %d" % lines)
        if extended:
            out.append(b" ")
            out.append(nstring_nolf(info.md5))
            out.append(_extension(info))
        out.append(b")")
