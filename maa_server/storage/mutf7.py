"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3).

Used on the IMAP wire and, unless `UTF-8` is in mail_location, for folder
names on disk, as Dovecot does."""

from __future__ import annotations

import base64


class MUtf7Error(ValueError):
    pass


def _b64_encode(chunk: str) -> str:
    raw = chunk.encode("utf-16-be")
    return base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")


def encode(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            if pending:
                out.append("&" + _b64_encode("".join(pending)) + "-")
                pending.clear()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    if pending:
        out.append("&" + _b64_encode("".join(pending)) + "-")
    return "".join(out)


def decode(name: str) -> str:
    """Strict: a name that is not valid modified UTF-7 raises MUtf7Error
    (Dovecot answers such names with NO)."""
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if ord(ch) < 0x20 or ord(ch) > 0x7E:
            raise MUtf7Error("8-bit or control character in mUTF-7 name")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise MUtf7Error("unterminated &-sequence")
        if end == i + 1:
            out.append("&")
            i = end + 1
            continue
        b64 = name[i + 1:end].replace(",", "/")
        if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" for c in b64):
            raise MUtf7Error("bad base64 in &-sequence")
        try:
            raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
            text = raw.decode("utf-16-be")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MUtf7Error(str(exc)) from exc
        if any(0x20 <= ord(c) <= 0x7E for c in text):
            raise MUtf7Error("printable ASCII must not be base64-encoded")
        out.append(text)
        i = end + 1
    return "".join(out)
