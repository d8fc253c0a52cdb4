"""MIME part tests and loops (RFC 5703: `mime`, `foreverypart`, `extracttext`)
over the storage layer's MIME parser, as Pigeonhole 0.5.19 behaves
(checked with sieve-test): `foreverypart` visits every part depth first,
the message itself included; a missing Content-Type gives no value (no
text/plain default); a missing :param gives ""; extracttext of text/html
is its text without markup. No I/O."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cached_property

from maa_server.storage.message import parse_addresses
from maa_server.storage.message.headers import field_text, find_fields
from maa_server.storage.message.parser import MULTIPART, RFC822, MimePart, parse_mime
from maa_server.storage.message.rfc822 import (
    parse_content_type,
    parse_params,
    parse_token_value,
)
from maa_server.storage.message.text import decode_charset, decode_transfer

_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(r"(?i)<\s*(br|/p|/div|/tr|/h[1-6]|/li)\b[^>]*>")
_SKIP = re.compile(r"(?is)<(script|style)\b.*?</\1\s*>")


@dataclass(eq=False)
class Part:
    """One MIME part of the message being filtered."""

    raw: bytes
    node: MimePart

    def headers(self, name: str) -> list[str]:
        return [field_text(f.value) for f in find_fields(self.node.fields, name)]

    def raw_headers(self, name: str) -> list[bytes]:
        return [f.value for f in find_fields(self.node.fields, name)]

    def addresses(self, name: str) -> list[str]:
        out: list[str] = []
        for value in self.headers(name):
            for addr in parse_addresses(value):
                if addr.mailbox is not None and addr.domain is not None:
                    out.append(addr.addr_spec if addr.mailbox and addr.domain else "")
        return out

    @cached_property
    def text(self) -> str:
        """The decoded body of a text part ("" for others), HTML as text."""
        info = self.node.info
        if self.node.kind in (MULTIPART, RFC822) or not info.is_text:
            return ""
        data = decode_transfer(self.raw[self.node.body_start:self.node.end], info.encoding)
        text = decode_charset(data, info.param(b"charset"))
        if (info.subtype or b"").lower() == b"html":
            text = _SKIP.sub("", text)
            text = html.unescape(_TAG.sub("", _BLOCK.sub("\n", text)))
        return text


def all_parts(raw: bytes) -> list[Part]:
    """Every part, the message itself first, depth first (pre-order)."""
    out: list[Part] = []

    def walk(node: MimePart) -> None:
        out.append(Part(raw, node))
        for child in node.children:
            walk(child)

    walk(parse_mime(raw))
    return out


def descendants(scope: list[Part], current: Part) -> list[Part]:
    """`current` and every part below it, in `scope`'s order."""
    inside: list[Part] = []
    ids = set()

    def mark(node: MimePart) -> None:
        ids.add(id(node))
        for child in node.children:
            mark(child)

    mark(current.node)
    for part in scope:
        if id(part.node) in ids:
            inside.append(part)
    return inside


def option_values(part: Part, header: str, tags: dict[str, object]) -> list[str]:
    """Values of `header` in `part` under :type / :subtype / :contenttype /
    :param (RFC 5703 4.2); without an option, the decoded header values."""
    option = next((o for o in ("type", "subtype", "contenttype", "param") if o in tags), "")
    if not option:
        return part.headers(header)
    out: list[str] = []
    lower = header.lower()
    for value in part.raw_headers(header):
        if lower == "content-type":
            ctype, subtype, _valid, scanner = parse_content_type(value)
            kind, sub = ctype.decode("utf-8", "replace").lower(), subtype.decode("utf-8", "replace").lower()
            params = parse_params(scanner)
        elif lower == "content-disposition":
            token, scanner, _ = parse_token_value(value)
            kind, sub = token.decode("utf-8", "replace").lower(), ""
            params = parse_params(scanner)
        else:
            out.append(field_text(value))
            continue
        if option == "type":
            out.append(kind)
        elif option == "subtype":
            out.append(sub)
        elif option == "contenttype":
            out.append(f"{kind}/{sub}" if sub else kind)
        else:
            wanted = [str(n).lower() for n in tags["param"]]  # type: ignore[attr-defined]
            found = {k.decode("utf-8", "replace").lower(): v.decode("utf-8", "replace") for k, v in params}
            out.extend(found.get(name, "") for name in wanted)
    return out
