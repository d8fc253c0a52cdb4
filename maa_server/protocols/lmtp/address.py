"""MAIL FROM / RCPT TO paths and parameters, sans-IO, with Dovecot's texts.

RFC 5321 section 4.1.2 (Path, Mailbox, Local-part) and section 4.1.1.11
(mail parameters). Error texts are those of Dovecot's lib-smtp
(smtp-address.c, smtp-syntax.c), observed on its LMTP server:
`501 5.5.4 Invalid FROM: Missing '<' at beginning of path` and the like.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 5322 atext
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                   "!#$%&'*+-/=?^_`{|}~")
_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


class PathError(ValueError):
    """The text after `Invalid FROM: ` / `Invalid TO: `."""


@dataclass(frozen=True, slots=True)
class Address:
    localpart: str
    domain: str = ""

    def __str__(self) -> str:
        local = self.localpart
        if local and not all(c in _ATEXT or c == "." for c in local) or ".." in local \
                or local.startswith(".") or local.endswith("."):
            local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{local}@{self.domain}" if self.domain else local

    @property
    def is_null(self) -> bool:
        return not self.localpart and not self.domain


NULL_ADDRESS = Address("")


def _parse_localpart(text: str) -> tuple[str, int]:
    if text.startswith('"'):
        out = []
        i = 1
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                return "".join(out), i + 1
            if ord(ch) < 32 or ch == "\x7f":
                raise PathError("Invalid character in quoted-string")
            out.append(ch)
            i += 1
        raise PathError("Missing '\"' at end of quoted-string")
    i = 0
    while i < len(text) and (text[i] in _ATEXT or text[i] == "." or ord(text[i]) > 127):
        i += 1
    local = text[:i]
    if i < len(text) and text[i] not in "@>":
        raise PathError("Invalid character in localpart")
    if not local or local.startswith(".") or ".." in local:
        raise PathError("Invalid character in localpart" if local else "Empty localpart")
    return local, i


def _parse_domain(text: str) -> tuple[str, int]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise PathError("Missing ']' at end of address literal")
        return text[:end + 1], end + 1
    i = 0
    while i < len(text) and (text[i] in _DOMAIN_CHARS or ord(text[i]) > 127):
        i += 1
    if i == 0:
        raise PathError("Missing domain")
    if i < len(text) and text[i] != ">":
        raise PathError("Invalid character in domain")
    return text[:i], i


def parse_path(text: str, allow_null: bool) -> tuple[Address, str]:
    """`<local@domain> PARAMS` -> (address, parameter text). A source route
    (`<@relay:user@host>`, RFC 5321 section 4.1.2) is accepted and dropped."""
    if text.startswith((" ", "\t")):
        raise PathError("Unexpected whitespace before path")
    if not text.startswith("<"):
        raise PathError("Missing '<' at beginning of path")
    rest = text[1:]
    if rest.startswith("@"):
        colon = rest.find(":")
        if colon < 0:
            raise PathError("Invalid source route")
        rest = rest[colon + 1:]
    if rest.startswith(">"):
        if not allow_null:
            raise PathError("Null path not allowed")
        address, pos = NULL_ADDRESS, 0
    else:
        local, pos = _parse_localpart(rest)
        domain = ""
        if rest[pos:pos + 1] == "@":
            domain, used = _parse_domain(rest[pos + 1:])
            pos += 1 + used
        address = Address(local, domain)
    if rest[pos:pos + 1] != ">":
        raise PathError("Missing '>' at end of path")
    params = rest[pos + 1:]
    if params and not params.startswith(" "):
        raise PathError("Invalid character after path")
    return address, params.strip(" ")


def parse_params(text: str) -> dict[str, str]:
    """`KEY=VALUE KEY2` -> {"KEY": "VALUE", "KEY2": ""}; keys upper-cased.
    Raises ValueError on a malformed parameter (RFC 5321 esmtp-param)."""
    params: dict[str, str] = {}
    for item in text.split():
        key, eq, value = item.partition("=")
        if not key or not all(c.isalnum() or c == "-" for c in key) or (eq and not value):
            raise ValueError(item)
        params[key.upper()] = value
    return params


def split_detail(localpart: str, delimiters: str) -> tuple[str, str]:
    """recipient_delimiter: the local part is cut at the first character
    that is any of the delimiters (spec 8.3)."""
    if not delimiters:
        return localpart, ""
    for i, ch in enumerate(localpart):
        if ch in delimiters:
            return localpart[:i], localpart[i + 1:]
    return localpart, ""


def decode_xtext(value: str) -> str:
    """RFC 3461 section 4: `+XX` hex escapes (ORCPT)."""
    out = []
    i = 0
    while i < len(value):
        if value[i] == "+" and i + 3 <= len(value):
            try:
                out.append(chr(int(value[i + 1:i + 3], 16)))
                i += 3
                continue
            except ValueError:
                pass
        out.append(value[i])
        i += 1
    return "".join(out)
