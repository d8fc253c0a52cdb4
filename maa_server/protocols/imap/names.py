"""Mailbox names between the wire and the store (RFC 3501 5.1, 5.1.3).

On the wire names are modified UTF-7 and carry the namespace prefix; the
store knows Unicode names without prefix. INBOX is case-insensitive.
"""

from __future__ import annotations

from maa_server.protocols.imap.errors import ImapCommandFailed
from maa_server.storage.mutf7 import MUtf7Error, decode, encode


class NameMapper:
    def __init__(self, prefix: str, separator: str, strip_trailing_separator: bool = False) -> None:
        self.prefix = prefix
        self.separator = separator
        # imap_client_workarounds = tb-extra-mailbox-sep: Thunderbird may
        # append a separator to names; ignore it as Dovecot then does.
        self.strip_trailing_separator = strip_trailing_separator

    def to_wire(self, name: str) -> str:
        if name.upper() == "INBOX":
            return "INBOX"
        return encode(self.prefix + name)

    def from_wire(self, raw: str) -> str:
        """A client-supplied name to the store's; NO when it is not valid
        mUTF-7 or lies outside our namespace."""
        if self.strip_trailing_separator and len(raw) > 1:
            raw = raw.removesuffix(self.separator)
        if raw.upper() == "INBOX":
            return "INBOX"
        try:
            name = decode(raw)
        except (MUtf7Error, ValueError):
            raise ImapCommandFailed("Mailbox name is not valid mUTF-7") from None
        if self.prefix:
            if name + self.separator == self.prefix or name == self.prefix:
                return ""
            if not name.startswith(self.prefix):
                raise ImapCommandFailed(f"Mailbox doesn't exist: {raw}", "NONEXISTENT")
            name = name[len(self.prefix):]
        if name.upper().startswith("INBOX" + self.separator):
            name = "INBOX" + name[5:]
        return name
