"""Errors the IMAP layer raises to turn into tagged BAD / NO answers.

Command code (and the FETCH/SEARCH helpers) raise these; the session turns
them into `<tag> BAD <text>` or `<tag> NO [CODE] <text>` and goes on.
"""

from __future__ import annotations


class ImapError(Exception):
    """Base class: `text` is what the client is told."""

    def __init__(self, text: str, code: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.code = code  # RFC 5530 response code without brackets, or ""

    def response(self, tag: str, kind: str) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {kind} {code}{self.text}\r\n".encode("utf-8", "surrogateescape")


class ImapParseError(ImapError):
    """The command's syntax is wrong: tagged BAD (RFC 3501 7.1.3)."""


class ImapBadCharset(ImapError):
    """SEARCH CHARSET we do not support: `NO [BADCHARSET] Unknown charset`
    (Dovecot 2.3 sends the code without the optional charset list)."""

    def __init__(self, text: str = "Unknown charset") -> None:
        super().__init__(text, "BADCHARSET")


class ImapCommandFailed(ImapError):
    """The command was understood but could not be done: tagged NO."""


class ImapBye(Exception):
    """End the session after sending `* BYE <text>`."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
