"""Address lists as Dovecot parses them (src/lib-mail/message-address.c).

IMAP's ENVELOPE (RFC 3501 7.4.2) wants each address as (name adl mailbox
host), with RFC 822 groups marked by a start entry (mailbox = group name, host
NIL) and an end entry (all NIL). Dovecot fills what is missing with
"MISSING_MAILBOX" / "MISSING_DOMAIN" and keeps going after syntax errors;
this module does the same, so broken headers give Dovecot's answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rfc822 import Rfc822Scanner


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address; bytes as they appear (RFC 2047 left encoded)."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    domain: bytes | None

    @property
    def is_group_start(self) -> bool:
        return self.mailbox is not None and self.domain is None

    @property
    def is_group_end(self) -> bool:
        return self.mailbox is None and self.domain is None and self.name is None

    @property
    def addr_spec(self) -> str:
        """`mailbox@domain` as text, "" for group markers."""
        if self.mailbox is None or self.domain is None:
            return ""
        return f"{self.mailbox.decode('utf-8', 'replace')}@{self.domain.decode('utf-8', 'replace')}"


class _AddressParser:
    __slots__ = (
        "domain",
        "fill_missing",
        "local_text",
        "mailbox",
        "name",
        "out",
        "route",
        "s",
    )

    def __init__(self, data: bytes, fill_missing: bool) -> None:
        self.s = Rfc822Scanner(data)
        self.fill_missing = fill_missing
        self.out: list[Address] = []
        self.local_text = b""
        self._reset()

    def _reset(self) -> None:
        self.name: bytes | None = None
        self.route: bytes | None = None
        self.mailbox: bytes | None = None
        self.domain: bytes | None = None

    def _add(self) -> None:
        self.out.append(Address(self.name, self.route, self.mailbox, self.domain))
        self._reset()

    def _add_fixed(self) -> None:
        if self.mailbox is None:
            self.mailbox = b"MISSING_MAILBOX" if self.fill_missing else b""
        if not self.domain:
            self.domain = b"MISSING_DOMAIN" if self.fill_missing else b""
        self._add()

    def _local_part(self) -> int:
        s = self.s
        buf = bytearray()
        if s.peek() == 0x22:
            ret = s.parse_quoted_string(buf)
        else:
            ret = s.parse_local_part_atoms(buf)
        # Dovecot parses into one shared buffer: what was read, even of a
        # failed local-part, starts a display name if words follow.
        self.local_text = bytes(buf)
        if ret < 0:
            return -1
        self.mailbox = self.local_text
        return ret

    def _domain(self) -> int:
        buf = bytearray()
        ret = self.s.parse_domain(buf)
        if ret < 0:
            return -1
        self.domain = bytes(buf)
        return ret

    def _domain_list(self) -> int:
        # obs-domain-list = "@" domain *(*(CFWS / ",") [CFWS] "@" domain)
        s = self.s
        buf = bytearray()
        while True:
            if s.pos >= s.end:
                return 0
            if s.peek() != 0x40:  # @
                break
            if buf:
                buf.append(0x2C)
            buf.append(0x40)
            ret = s.parse_domain(buf)
            if ret <= 0:
                return ret
            while s.skip_lwsp() > 0 and s.peek() == 0x2C:
                s.pos += 1
        self.route = bytes(buf)
        return 1

    def _angle_addr(self) -> int:
        s = self.s
        s.pos += 1  # "<"
        if s.skip_lwsp() <= 0:
            return -1
        if s.peek() == 0x40:
            if self._domain_list() > 0 and s.peek() == 0x3A:  # ":"
                s.pos += 1
            else:
                if self.fill_missing:
                    self.route = b"INVALID_ROUTE"
                if s.pos >= s.end:
                    return -1
            if s.skip_lwsp() <= 0:
                return -1
        if s.peek() != 0x3E:  # not "<>"
            if self._local_part() <= 0:
                return -1
            if s.peek() == 0x40 and self._domain() <= 0:
                return -1
        if s.peek() != 0x3E:
            return -1
        s.pos += 1
        return s.skip_lwsp()

    def _name_addr(self) -> int:
        s = self.s
        buf = bytearray()
        if s.parse_phrase(buf) <= 0 or s.peek() != 0x3C:
            return -1
        self.name = bytes(buf) or None
        if self._angle_addr() < 0:
            self.domain = b"SYNTAX_ERROR"
        return 1 if s.pos < s.end else 0

    def _addr_spec(self) -> int:
        s = self.s
        s.last_comment = b""
        quoted = s.peek() == 0x22
        ret = self._local_part()
        ret2 = -2
        if ret != 0 and s.peek() == 0x40:
            ret2 = self._domain()
            if ret2 <= 0:
                ret = ret2
        if s.last_comment:
            self.name = s.last_comment
        elif ret2 == -2:
            # A lone "user": a mailbox if alone, a display name if words follow.
            buf = bytearray(self.local_text + b" ")
            orig = len(buf)
            ret = s.parse_phrase(buf)
            if len(buf) != orig:
                self.mailbox = None
                self.name = bytes(buf)
            elif not quoted:
                self.domain = b""
            else:
                # A lone "quoted string" is a display name, not a mailbox.
                self.name, self.mailbox = self.mailbox, None
        return ret

    def _mailbox(self) -> int:
        s = self.s
        start = s.pos
        ret = self._name_addr()
        if ret < 0:
            s.pos = start
            self.name = self.route = self.mailbox = self.domain = None
            ret = self._addr_spec()
        self._add_fixed()
        return ret

    def _group(self) -> int:
        s = self.s
        buf = bytearray()
        if s.parse_phrase(buf) <= 0 or s.peek() != 0x3A:
            return -1
        s.pos += 1
        ret = s.skip_lwsp()
        self.mailbox = bytes(buf)
        self._add()
        if ret > 0 and s.peek() != 0x3B:  # ";"
            while True:
                if self._mailbox() <= 0:
                    ret = -1
                    break
                if s.peek() != 0x2C:
                    break
                s.pos += 1
                if s.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if s.peek() != 0x3B:
                ret = -1
            else:
                s.pos += 1
                ret = s.skip_lwsp()
        self._add()  # group end marker
        return 0 if ret == 0 else 1

    def _address(self) -> int:
        start = self.s.pos
        ret = self._group()
        if ret < 0:
            self.s.pos = start
            self._reset()
            ret = self._mailbox()
        return ret

    def parse(self, max_addresses: int) -> list[Address]:
        s = self.s
        if s.skip_lwsp() <= 0:
            return []
        while max_addresses > 0:
            max_addresses -= 1
            if self._address() == 0:
                break
            if s.peek() != 0x2C:
                break
            s.pos += 1
            ret = s.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self._add_fixed()
                break
        return self.out


def parse_address_bytes(
    value: bytes, fill_missing: bool = True, limit: int = 1 << 30
) -> list[Address]:
    """Parse one header value (bytes) as Dovecot's message_address_parse."""
    return _AddressParser(value, fill_missing).parse(limit)


def parse_addresses(value: str | bytes) -> list[Address]:
    """Addresses of a header value, no placeholders for missing parts."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    return [a for a in parse_address_bytes(value, fill_missing=False)]
