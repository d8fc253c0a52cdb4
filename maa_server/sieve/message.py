"""What a Sieve script sees of a message: decoded headers, addresses, body
text, date fields. Lazy and cached: most scripts look at two headers."""

from __future__ import annotations

import datetime
import email.utils
from dataclasses import dataclass, field
from functools import cached_property

from maa_server.storage.message import body_text, header_values, parse_addresses


@dataclass
class Envelope:
    mail_from: str = ""  # the reverse path, without <>; "" for the null sender
    rcpt_to: str = ""  # the recipient being delivered to
    auth: str = ""


@dataclass
class SieveMessage:
    raw: bytes
    envelope: Envelope = field(default_factory=Envelope)

    def headers(self, name: str) -> list[str]:
        return header_values(self.raw, name)

    def addresses(self, name: str) -> list[str]:
        """addr-specs of an address header, in order ("" for `<>` and for
        what does not parse). Dovecot's message_address_parse() (the parser
        Pigeonhole uses), not email.utils: `[acme] list <a@b>` must not
        yield `a@b` (Pigeonhole's sieve-test agrees). Group markers skipped."""
        out: list[str] = []
        for value in self.headers(name):
            for addr in parse_addresses(value):
                if addr.mailbox is None or addr.domain is None:
                    continue  # RFC 5322 group start/end
                out.append(addr.addr_spec if addr.mailbox and addr.domain else "")
        return out

    @cached_property
    def text(self) -> str:
        return body_text(self.raw)

    @cached_property
    def raw_body(self) -> str:
        sep = self.raw.find(b"\r\n\r\n")
        skip = 4
        lf = self.raw.find(b"\n\n")
        if sep < 0 or (0 <= lf < sep):
            sep, skip = lf, 2
        return "" if sep < 0 else self.raw[sep + skip:].decode("utf-8", "replace")

    def date(self, name: str) -> datetime.datetime | None:
        for value in self.headers(name):
            try:
                return email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                continue
        return None
