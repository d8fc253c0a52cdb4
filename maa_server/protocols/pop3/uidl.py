"""POP3 UIDLs exactly as Dovecot makes them (spec 5.13, 2.7).

`pop3_uidl_format` is a Dovecot `%` template (src/lib/var-expand.c) over the
keys of src/pop3/pop3-client.c (`pop3_get_uid`): `%u`/`%{uid}` IMAP UID,
`%v`/`%{uidvalidity}` the mailbox UIDVALIDITY, `%f`/`%{filename}` Maildir
base file name, `%g`/`%{guid}` message GUID, `%m`/`%{md5}` header MD5 (mbox
only: on Maildir Dovecot cannot list such UIDLs, see mail.py). A UIDL
saved in dovecot-uidlist (`P` record key) wins over the template, so a
client keeps its UIDLs when the template later changes.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

DEFAULT_UIDL_FORMAT = "%08Xu%08Xv"

_LONG_NAMES = {"uid": "u", "uidvalidity": "v", "md5": "m", "filename": "f", "guid": "g"}
# %[-][0][width][.[-][0]width] modifiers key-or-{name}  (var-expand.c)
_VARIABLE = re.compile(
    r"%(?P<neg>-?)(?P<zero>0?)(?P<width>[0-9]*)"
    r"(?:\.(?P<neg2>-?)(?P<zero2>0?)(?P<width2>[0-9]+))?"
    r"(?P<mods>[LUEXRHNMDT]*)(?:\{(?P<long>[^}]*)\}|(?P<key>.))",
    re.DOTALL,
)


class InvalidUidlFormat(ValueError):
    """A template Dovecot refuses at start-up (unknown key, or no key)."""


@dataclass(frozen=True, slots=True)
class UidlKeys:
    """The values a template may use for one message."""

    uid: int
    uidvalidity: int
    filename: str
    guid: str
    header_md5: str = ""


def _modify(value: str, mods: str, modulo: int) -> str:
    for mod in mods:
        if mod == "L":
            value = value.lower()
        elif mod == "U":
            value = value.upper()
        elif mod == "E":
            value = re.sub(r"([\"'\\])", r"\\\1", value)
        elif mod == "X":
            # decimal -> lowercase hex; non-numbers are left as they are
            value = format(int(value), "x") if value.isdigit() else value
        elif mod == "R":
            value = value[::-1]
        elif mod == "M":
            value = hashlib.md5(value.encode()).hexdigest()
        elif mod == "N":
            digest = int.from_bytes(hashlib.md5(value.encode()).digest(), "big")
            value = format(digest % modulo if modulo else digest, "x")
        elif mod == "T":
            value = value.rstrip()
        elif mod == "D":
            value = ",dc=".join(value.split("."))
        elif mod == "H":
            value = format(_old_hash(value) % modulo if modulo else _old_hash(value), "x")
    return value


def _old_hash(value: str) -> int:
    """Dovecot's str_hash() (src/lib/hash.c), used by the `H` modifier."""
    g = h = 0
    for ch in value.encode():
        h = ((h << 4) + ch) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
            h ^= g
    return h


@functools.lru_cache(maxsize=32)
def uses_header_md5(template: str) -> bool:
    return any((m.group("long") or m.group("key")) in ("m", "md5")
               for m in _VARIABLE.finditer(template))


def validate(template: str) -> None:
    """Dovecot's config check (src/pop3/pop3-settings.c): every `%` key must
    be one of u v m f g (or `%%`) and at least one must be there. Long names
    such as `%{uid}` are refused by Dovecot 2.3 too (observed: `Unknown
    pop3_uidl_format variable: %{`)."""
    found = False
    for match in re.finditer(r"%[-0-9.]*[LUEXRHNMDT]*(.?)", template, re.DOTALL):
        key = match.group(1)
        if key == "%":
            continue
        if key not in ("u", "v", "m", "f", "g"):
            raise InvalidUidlFormat(f"Unknown pop3_uidl_format variable: %{key}")
        found = True
    if not found:
        raise InvalidUidlFormat("pop3_uidl_format setting doesn't contain any %-variables.")


@dataclass(frozen=True, slots=True)
class _Variable:
    """One `%` variable of a template, its modifiers parsed once."""

    key: str  # u v f g m %, or "" for an unknown one
    mods: str
    modulo: int  # the width, for N and H
    width: int
    zero: bool
    neg: bool
    length: int | None  # %<offset>.<length>: substring
    zero2: bool
    neg2: bool

    @classmethod
    def of(cls, match: re.Match[str]) -> _Variable:
        key = match.group("key")
        if match.group("long") is not None:
            key = _LONG_NAMES.get(match.group("long"), "")
        mods = match.group("mods") or ""
        width = int(match.group("width") or 0)
        width2 = match.group("width2")
        return cls(key=key or "", mods=mods, modulo=width if set(mods) & {"N", "H"} else 0,
                   width=width, zero=bool(match.group("zero")), neg=bool(match.group("neg")),
                   length=None if width2 is None else int(width2),
                   zero2=bool(match.group("zero2")), neg2=bool(match.group("neg2")))

    def expand(self, keys: UidlKeys) -> str:
        key = self.key
        if key == "%":
            return "%"
        if key == "u":
            raw = str(keys.uid)
        elif key == "v":
            raw = str(keys.uidvalidity)
        elif key == "f":
            raw = keys.filename
        elif key == "g":
            raw = keys.guid or keys.filename
        elif key == "m":
            raw = keys.header_md5
        else:
            return ""  # unknown keys expand to nothing, as var_expand does
        value = _modify(raw, self.mods, self.modulo) if self.mods else raw
        if self.modulo:
            return value
        width = self.width
        if self.length is not None:
            # %<offset>.<width>X: substring; the zero flag belongs to the width
            offset = -width if self.neg else width
            if offset < 0:
                offset = max(len(value) + offset, 0)
            if self.zero2:
                return value[offset:].rjust(self.length, "0")
            value = value[offset:]
            return value[:len(value) - self.length] if self.neg2 else value[:self.length]
        if not width:
            return value
        if self.zero:
            return value.rjust(width, "0")  # pad, never truncate
        if self.neg:
            return value[:max(len(value) - width, 0)]
        return value[:width]


@functools.lru_cache(maxsize=32)
def _pieces(template: str) -> tuple[str | _Variable, ...]:
    """The template split once into literal text and `%` variables: a
    maildrop expands the same template for every message."""
    out: list[str | _Variable] = []
    pos = 0
    for match in _VARIABLE.finditer(template):
        if match.start() > pos:
            out.append(template[pos:match.start()])
        out.append(_Variable.of(match))
        pos = match.end()
    if pos < len(template):
        out.append(template[pos:])
    return tuple(out)


def expand(template: str, keys: UidlKeys) -> str:
    return "".join(piece if isinstance(piece, str) else piece.expand(keys)
                   for piece in _pieces(template))


def message_uidl(template: str, keys: UidlKeys, saved: str = "") -> str:
    """The UIDL shown for one message: the saved one if any (an empty `P`
    value means the base file name), else the template."""
    if saved:
        return saved
    return expand(template, keys)


def make_unique(uidls: list[str]) -> list[str]:
    """`pop3_uidl_duplicates = rename`: later duplicates get `-2`, `-3`...
    (pop3-client.c, pop3_uidl_assign_uidls_rename)."""
    seen: dict[str, int] = {}
    out = []
    for uidl in uidls:
        count = seen.get(uidl, 0) + 1
        seen[uidl] = count
        out.append(uidl if count == 1 else f"{uidl}-{count}")
    return out
