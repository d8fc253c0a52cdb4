"""RFC 822/5322 lexical scanner, a port of Dovecot's src/lib-mail/rfc822-parser.c.

Dovecot's ENVELOPE addresses and BODYSTRUCTURE parameters come out of this
scanner, with its quirks (8-bit bytes are atext, a comment right after an
address becomes its display name, "." may appear in phrases, folding inside
quoted strings is dropped), so matching its answers means scanning as it does.
All values are bytes; nothing here raises on bad input.
"""

from __future__ import annotations

# atext (RFC 5322 3.2.3) plus every 8-bit byte, as Dovecot's rfc822_atext_chars.
_ATEXT = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
) | frozenset(range(0x80, 0x100))
# RFC 2045 5.1 token characters: atext minus the tspecials "/", "=", "?",
# plus ".", which is atext's special but not a tspecial.
_TOKEN = (_ATEXT - frozenset(b"/=?")) | frozenset(b".")
_LWSP = frozenset(b" \t\r\n")
_ATEXT_OR_DOT = _ATEXT | frozenset(b".")


class Rfc822Scanner:
    """A cursor over one header value; methods mirror rfc822-parser.c.

    Return values follow Dovecot: 1 = more data follows, 0 = end of data
    reached, -1 = syntax error.
    """

    __slots__ = ("data", "end", "last_comment", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment = b""

    def peek(self) -> int:
        """The byte at the cursor, or -1 at the end (Dovecot reads a NUL there)."""
        return self.data[self.pos] if self.pos < self.end else -1

    def skip_comment(self) -> int:
        # Comments nest (RFC 5322 3.2.2); the last one is remembered because
        # an address followed by "(Name)" takes it as its display name.
        data, end = self.data, self.end
        start = self.pos + 1
        depth = 1
        out = bytearray()
        i = start
        while i < end:
            c = data[i]
            if c == 0x28:  # (
                depth += 1
            elif c == 0x29:  # )
                depth -= 1
                if depth == 0:
                    self.last_comment = bytes(out)
                    self.pos = i + 1
                    return 1 if self.pos < end else 0
            elif c == 0x5C:  # backslash
                i += 1
                if i >= end:
                    break
                c = data[i]
            if c not in (0x0D, 0x0A):
                out.append(c)
            i += 1
        self.pos = end
        return -1

    def skip_lwsp(self) -> int:
        data, end = self.data, self.end
        while self.pos < end:
            c = data[self.pos]
            if c in _LWSP:
                self.pos += 1
            elif c == 0x28:
                if self.skip_comment() < 0:
                    return -1
            else:
                return 1
        return 0

    def _run(self, chars: frozenset[int]) -> bytes:
        data, end, start = self.data, self.end, self.pos
        i = start
        while i < end and data[i] in chars:
            i += 1
        self.pos = i
        return data[start:i]

    def parse_atom(self, out: bytearray) -> int:
        if self.pos >= self.end or self.peek() not in _ATEXT:
            return -1
        out += self._run(_ATEXT)
        return self.skip_lwsp()

    def parse_token(self, out: bytearray) -> int:
        """RFC 2045 token (Content-Type parameters, encodings)."""
        if self.pos >= self.end or self.peek() not in _TOKEN:
            return -1
        out += self._run(_TOKEN)
        return self.skip_lwsp()

    def parse_mime_token(self, out: bytearray) -> int:
        """Dovecot's rfc822_parse_mime_token(): an empty token is no error."""
        out += self._run(_TOKEN)
        if self.pos >= self.end:
            return 0
        return self.skip_lwsp()

    def parse_dot_atom(self, out: bytearray) -> int:
        # RFC 822 compatibility: whitespace and comments allowed around ".".
        if self.pos >= self.end or self.peek() not in _ATEXT:
            return -1
        while True:
            out += self._run(_ATEXT)
            if self.pos >= self.end:
                return 0
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if self.peek() != 0x2E:  # .
                return 1
            self.pos += 1
            out.append(0x2E)
            ret = self.skip_lwsp()
            if ret <= 0:
                return -1  # "a." at the end
            if self.peek() not in _ATEXT:
                return -1  # "a..b", "a.@": Dovecot's domains are strict

    def parse_quoted_string(self, out: bytearray) -> int:
        # The content is added only once the closing quote is found.
        data, end = self.data, self.end
        buf = bytearray()
        i = self.pos + 1
        while i < end:
            c = data[i]
            if c == 0x22:  # closing quote
                out += buf
                self.pos = i + 1
                return self.skip_lwsp()
            if c == 0x5C:
                i += 1
                if i >= end:
                    break
                buf.append(data[i])
            elif c in (0x0D, 0x0A):
                pass  # folding inside the string: the line break goes
            elif c == 0:
                buf += b"\xef\xbf\xbd"  # NUL becomes U+FFFD, as in Dovecot
            else:
                buf.append(c)
            i += 1
        self.pos = end
        return -1

    def parse_atom_or_dot(self, out: bytearray) -> int:
        """atext and "." run, possibly empty (rfc822_parse_atom_or_dot())."""
        out += self._run(_ATEXT_OR_DOT)
        if self.pos >= self.end:
            return 0
        return self.skip_lwsp()

    def parse_local_part_atoms(self, out: bytearray) -> int:
        """A dot-atom where dots may lead, trail or repeat, as Dovecot's
        MESSAGE_ADDRESS_PARSE_FLAG_NON_STRICT_DOTS (used for ENVELOPE)."""
        if self.pos >= self.end or self.peek() not in _ATEXT_OR_DOT:
            return -1
        while True:
            run = self._run(_ATEXT_OR_DOT)
            out += run
            if self.pos >= self.end:
                return 0
            if not run.strip(b".") and self.data[self.pos] != 0x40:
                return -1  # only dots, then not "@": Dovecot rejects it
            ret = self.skip_lwsp()
            if ret <= 0 or self.peek() != 0x2E:
                return ret

    def parse_phrase(self, out: bytearray) -> int:
        # phrase = 1*word / obs-phrase; obs-phrase allows "." (RFC 5322 4.1).
        # As in Dovecot, an empty phrase is no error.
        if self.pos >= self.end:
            return 0
        if self.peek() == 0x2E:
            return -1
        while True:
            if self.peek() == 0x22:
                ret = self.parse_quoted_string(out)
            else:
                ret = self.parse_atom_or_dot(out)
            if ret <= 0:
                return ret
            c = self.peek()
            if c not in _ATEXT_OR_DOT and c != 0x22:
                break
            out.append(0x20)
        return self.skip_lwsp()

    def parse_domain(self, out: bytearray) -> int:
        """After "@": dot-atom or [domain-literal]."""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1
        if self.peek() == 0x5B:  # [
            end = self.data.find(b"]", self.pos)
            if end < 0:
                self.pos = self.end
                return -1
            literal = self.data[self.pos : end + 1]
            out += bytes(c for c in literal if c not in (0x0D, 0x0A, 0x20, 0x09))
            self.pos = end + 1
            return self.skip_lwsp()
        return self.parse_dot_atom(out)

    def parse_content_value(self, out: bytearray) -> int:
        if self.peek() == 0x22:
            return self.parse_quoted_string(out)
        return self.parse_token(out)


def parse_content_type(value: bytes) -> tuple[bytes, bytes, bool, Rfc822Scanner]:
    """(type, subtype, valid, scanner at the parameters) of a Content-Type.

    Dovecot's rules, found by differential testing: a lone type ("text") is
    kept with subtype ""; anything else that is not `type/subtype` followed
    by the end or ";" ("text/", "text plain", "text/plain junk") makes the
    whole field "" "" without parameters.
    """
    s = Rfc822Scanner(value)
    ctype = bytearray()
    if s.skip_lwsp() <= 0:
        return b"", b"", False, s
    ret = s.parse_mime_token(ctype)
    if not ctype:
        return b"", b"", False, s
    if ret == 0:
        return bytes(ctype), b"", True, s
    if ret < 0 or s.peek() != 0x2F:  # "/"
        return b"", b"", False, s
    s.pos += 1
    sub = bytearray()
    if s.skip_lwsp() <= 0 or s.parse_mime_token(sub) < 0 or not sub:
        return b"", b"", False, s
    if s.pos < s.end and s.peek() != 0x3B:  # ";"
        return b"", b"", False, s
    return bytes(ctype), bytes(sub), True, s


def parse_token_value(value: bytes) -> tuple[bytes, Rfc822Scanner, int]:
    """A leading MIME token (Content-Disposition type, transfer encoding);
    returns (token, scanner, Dovecot's return code)."""
    s = Rfc822Scanner(value)
    s.skip_lwsp()
    tok = bytearray()
    ret = s.parse_mime_token(tok)
    return bytes(tok), s, ret


def _content_param(s: Rfc822Scanner) -> tuple[int, bytes, bytes]:
    """One `; key=value` (rfc822_parse_content_param): (ret, key, value)."""
    if s.pos >= s.end:
        return 0, b"", b""
    if s.peek() != 0x3B:  # ";"
        return -1, b"", b""
    s.pos += 1
    if s.skip_lwsp() <= 0:
        return -1, b"", b""
    key = bytearray()
    if s.parse_mime_token(key) <= 0 or s.peek() != 0x3D:  # "="
        return -1, b"", b""
    s.pos += 1
    value = bytearray()
    ret = s.skip_lwsp()
    if ret <= 0:
        pass  # no value
    elif s.peek() == 0x22:
        ret = s.parse_quoted_string(value)
    elif s.peek() == 0x3D:
        # Dovecot's workaround for broken name==?utf-8?b?...?= values.
        while s.pos < s.end and s.peek() not in b"; \t\r\n\x00":
            value.append(s.data[s.pos])
            s.pos += 1
    else:
        ret = s.parse_mime_token(value)
    return (-1 if ret < 0 else 1), bytes(key), bytes(value)


def parse_params(s: Rfc822Scanner) -> list[tuple[bytes, bytes]]:
    """The parameters after a MIME type/token, RFC 2231 continuations joined
    (rfc2231-parser.c); a broken parameter is skipped one byte at a time."""
    plain: list[tuple[bytes, bytes]] = []
    while True:
        ret, key, value = _content_param(s)
        if ret == 0:
            break
        if ret < 0:
            if s.pos >= s.end:
                break
            s.pos += 1
            continue
        plain.append((key, value))
    return _join_rfc2231(plain)


def _join_rfc2231(params: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """RFC 2231 3-4 as Dovecot's rfc2231_parse(): `name*`, `name*N` and
    `name*N*` pieces are sorted by name then index and follow the plain
    parameters; complete runs are joined into `name` (`name*` when any piece
    is extended), values left encoded; runs with gaps keep their pieces."""
    result: list[tuple[bytes, bytes]] = []
    pieces: list[tuple[bytes, int, bool, bytes]] = []  # name, index, extended, value
    for key, value in params:
        star = key.find(b"*")
        if star < 0:
            result.append((key, value))
            continue
        # "name*" is piece 0, extended; "name*N" and "name*N*" as RFC 2231 says.
        rest = key[star + 1 :] if star + 1 < len(key) else key[star:]
        digits = len(rest) - len(rest.lstrip(b"0123456789"))
        idx = int(rest[:digits]) if digits else 0
        tail = rest[digits:]
        if tail not in (b"", b"*"):
            result.append((key, value))  # not RFC 2231 after all
            continue
        pieces.append((key[:star], idx, tail == b"*", value))
    # Dovecot sorts with strcmp() (case matters) but groups with strcasecmp().
    pieces.sort(key=lambda p: (p[0], p[1]))
    i = 0
    while i < len(pieces):
        name = pieces[i][0]
        j = i
        while j < len(pieces) and pieces[j][0].lower() == name.lower():
            j += 1
        run = pieces[i:j]
        complete = all(p[1] == n for n, p in enumerate(run))
        extended = any(p[2] for p in run)
        if not complete:
            for p in run:
                result.append((p[0] + b"*%d" % p[1] + (b"*" if p[2] else b""), p[3]))
        else:
            joined = bytearray(b"''" if extended and not run[0][2] else b"")
            for p in run:
                joined += p[3].replace(b"%", b"%25") if extended and not p[2] else p[3]
            result.append((name + b"*" if extended else name, bytes(joined)))
        i = j
    return result
