"""The Content-* fields of one MIME part, as Dovecot's message-part-data.c keeps them.

Case is preserved everywhere (Dovecot sends "TEXT" "PLAIN" when the message
says so); the first Content-Type/-ID/-Description/-Disposition/-Location/-MD5
field wins; Content-Language is a comma list of tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .headers import HeaderField
from .rfc822 import Rfc822Scanner, parse_content_type, parse_params, parse_token_value


@dataclass(slots=True)
class ContentInfo:
    ctype: bytes | None = None  # None: no usable Content-Type (text/plain)
    subtype: bytes | None = None
    params: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_id: bytes | None = None
    description: bytes | None = None
    encoding: bytes | None = None
    md5: bytes | None = None
    disposition: bytes | None = None
    disposition_params: list[tuple[bytes, bytes]] = field(default_factory=list)
    language: list[bytes] | None = None
    location: bytes | None = None
    is_multipart: bool = False
    is_digest: bool = False
    is_rfc822: bool = False
    boundary: bytes | None = None
    overflow: bool = False  # container demoted by the nesting limit
    type_valid: bool = False

    @property
    def is_text(self) -> bool:
        return self.ctype is None or self.ctype.lower() == b"text"

    def param(self, name: bytes) -> bytes | None:
        lname = name.lower()
        for k, v in self.params:
            if k.lower() == lname:
                return v
        return None


def _clean(value: bytes) -> bytes:
    """Dovecot's message_header_strdup(): NUL becomes U+FFFD."""
    return value.replace(b"\x00", b"\xef\xbf\xbd") if b"\x00" in value else value


def _language_list(value: bytes) -> list[bytes]:
    # Content-Language (RFC 3282): atoms separated by ","; Dovecot stops at
    # the first thing that is neither (message-part-data.c).
    s = Rfc822Scanner(value)
    out: list[bytes] = []
    if s.skip_lwsp() <= 0:
        return out
    while True:
        tok = bytearray()
        if s.parse_atom(tok) < 0:
            break
        out.append(bytes(tok))
        if s.peek() != 0x2C:
            break
        s.pos += 1
        if s.skip_lwsp() <= 0:
            break
    return out


def parse_content_info(
    fields: Sequence[HeaderField], in_digest: bool, is_mime: bool = True
) -> ContentInfo:
    """Content-* of one part; only Content-Type counts unless `is_mime`."""
    info = ContentInfo()
    seen_type = False
    for f in fields:
        lname = f.lname
        if not lname.startswith("content-"):
            continue
        kind = lname[8:]
        if not is_mime and kind != "type":
            continue
        value = f.value
        if kind == "type":
            if seen_type:
                continue
            seen_type = True
            ctype, sub, valid, scanner = parse_content_type(value)
            info.ctype, info.subtype = ctype, sub
            info.type_valid = valid
            if valid:
                info.params = parse_params(scanner)
        elif kind == "transfer-encoding":
            if info.encoding is None:
                # Only a lone token counts (message-part-data.c).
                tok, scanner, ret = parse_token_value(value)
                if ret >= 0 and tok and scanner.skip_lwsp() == 0:
                    info.encoding = tok
        elif kind == "id" and info.content_id is None:
            info.content_id = _clean(value)
        elif kind == "description" and info.description is None:
            info.description = _clean(value)
        elif kind == "disposition":
            if info.disposition is None:
                tok, scanner, ret = parse_token_value(value)
                if ret >= 0:
                    info.disposition = tok
                    info.disposition_params = parse_params(scanner)
        elif kind == "language" and info.language is None:
            info.language = _language_list(value)
        elif kind == "location" and info.location is None:
            info.location = _clean(value)
        elif kind == "md5" and info.md5 is None:
            info.md5 = _clean(value)
    if info.ctype is None and in_digest:
        # RFC 2046 5.1.5: in multipart/digest the default is message/rfc822.
        info.ctype, info.subtype = b"message", b"rfc822"
        info.type_valid = True
    if info.ctype is not None and info.subtype is not None and info.type_valid:
        lt = info.ctype.lower()
        if lt == b"multipart":
            info.is_multipart = True
            info.is_digest = info.subtype.lower() == b"digest"
            # An empty boundary="" is still a boundary: "--" lines (seen in Dovecot).
            info.boundary = info.param(b"boundary")
        elif lt == b"message" and info.subtype.lower() == b"rfc822":
            info.is_rfc822 = True
    return info
