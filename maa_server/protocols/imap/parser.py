"""Sans-IO IMAP command parser (RFC 3501 section 9, RFC 7888 literals).

The session feeds it one line at a time (`feed_line`) and, when a line ends
in a literal announcement, the literal's bytes (`feed_literal`). State is kept
across literals: tokens already parsed are never parsed again, so a command
carrying many literals costs linear time. Like Dovecot's imap-parser.c the
result is a generic argument tree (tokens.Atom / String / list); each command
reads its own grammar from it.

Results of `feed_line`:
  * `Command`      the command is complete;
  * `NeedLiteral`  read `size` more bytes (after sending `+ OK` when
                   `synchronizing`), pass them to `feed_literal`, then go on
                   with the next line.
Errors raise `CommandSyntaxError` (tagged BAD, or untagged `* BAD` when no tag
was read); the parser is then reset for the next command.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.tokens import Arg, Atom, String

MAX_LIST_DEPTH = 20  # Dovecot: IMAP_PARSE_FLAG_... list depth limit is similar

# RFC 3501 9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
# quoted-specials / resp-specials. We accept `%`, `*` and `]` inside atoms
# (list-mailbox, sequence sets, flags) as Dovecot does, and `\` for flags.
_ATOM_STOP = frozenset(b'() {"\r\n')


@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    name: str  # upper-cased command name ("UID" commands keep "UID")
    args: list[Arg] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NeedLiteral:
    size: int
    synchronizing: bool  # True for {n}: the client waits for "+ OK"
    tag: str
    name: str


class CommandSyntaxError(ImapParseError):
    """Bad syntax; `tag` is "" when even the tag was unreadable.

    `skip_literal` is the size of an announced literal the session must
    discard (non-synchronising literals already on their way)."""

    def __init__(self, text: str, tag: str = "", skip_literal: int = 0,
                 code: str = "", kind: str = "BAD", name: str = "") -> None:
        super().__init__(text, code)
        self.tag = tag
        self.skip_literal = skip_literal
        self.kind = kind  # "NO" for APPEND [TOOBIG]
        # The command as Dovecot names it in "Error in IMAP command NAME: ..."
        # ("UID FETCH" for UID commands); "" when not read yet.
        self.name = name


def _is_tag_char(c: int) -> bool:
    # tag = 1*<any ASTRING-CHAR except "+">
    return 0x20 < c < 0x7F and c not in b'(){ %*"\\+'


class CommandParser:
    """One per connection; reusable after each command or error."""

    def __init__(self, max_literal: int = 64 * 1024,
                 max_append: int = 256 * 1024 * 1024, literal_minus: bool = False) -> None:
        self.max_literal = max_literal  # literals of ordinary commands
        self.max_append = max_append  # the message literal of APPEND
        # RFC 7888 LITERAL-: non-synchronising literals only up to 4096 bytes.
        self.literal_minus = literal_minus
        self.reset()

    def reset(self) -> None:
        self.tag = ""
        self.name = ""
        self._stack: list[list[Arg]] = [[]]
        self._pending_literal: int | None = None
        self._line_bytes = 0

    # -- public ---------------------------------------------------------

    def feed_line(self, line: bytes) -> Command | NeedLiteral:
        """Parse one line (with or without its CRLF)."""
        if self._pending_literal is not None:
            raise RuntimeError("literal expected, not a line")
        if line.endswith(b"\n"):
            line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            pos = 0
            if not self.name:
                pos = self._parse_head(line)
            return self._parse_args(line, pos)
        except CommandSyntaxError:
            self.reset()
            raise

    def feed_literal(self, data: bytes) -> None:
        if self._pending_literal is None or len(data) != self._pending_literal:
            raise RuntimeError("unexpected literal data")
        self._stack[-1].append(String(data, literal=True))
        self._pending_literal = None

    # -- internals ------------------------------------------------------

    def _error(self, text: str, skip: int = 0) -> CommandSyntaxError:
        name = self.name
        top = self._stack[0]
        if name == "UID" and top and isinstance(top[0], Atom):
            name = f"UID {top[0].value.upper()}"
        return CommandSyntaxError(text, self.tag, skip, name=name)

    def _parse_head(self, line: bytes) -> int:
        n = len(line)
        pos = 0
        while pos < n and _is_tag_char(line[pos]):
            pos += 1
        if pos == 0 or (pos < n and line[pos] != 0x20):
            raise CommandSyntaxError("Error in IMAP command received by server.")
        self.tag = line[:pos].decode("ascii")
        if pos >= n:
            raise self._error("Error in IMAP command received by server.")
        pos += 1
        start = pos
        while pos < n and line[pos] not in _ATOM_STOP and line[pos] != 0x5B:
            pos += 1
        name = line[start:pos]
        if not name or not name.isascii():
            raise self._error("Error in IMAP command received by server.")
        self.name = name.decode("ascii").upper()
        if pos < n and line[pos] != 0x20:
            raise self._error("Error in IMAP command received by server.")
        return pos

    def _parse_args(self, line: bytes, pos: int) -> Command | NeedLiteral:
        n = len(line)
        while True:
            if pos >= n:
                break
            if line[pos] == 0x20:
                # Dovecot's imap-parser skips any run of spaces between
                # arguments, and trailing ones (observed: `FETCH 1  FLAGS`).
                while pos < n and line[pos] == 0x20:
                    pos += 1
                if pos >= n:
                    break
            # No space is needed right after a literal: Dovecot's parser reads
            # on (observed: `FROM {6+}` + 7 bytes makes the 7th an argument).
            c = line[pos]
            if c == 0x28:  # (
                if len(self._stack) > MAX_LIST_DEPTH:
                    raise self._error("Too deep list nesting")
                new: list[Arg] = []
                self._stack[-1].append(new)
                self._stack.append(new)
                pos += 1
                continue
            if c == 0x29:  # )
                if len(self._stack) == 1:
                    raise self._error("Unexpected ')'")
                self._stack.pop()
                pos += 1
                # `(FLAGS)(UID)`: Dovecot's parser needs no space after ')'.
                continue
            if c == 0x22:  # "
                pos = self._parse_quoted(line, pos)
            elif c == 0x7B:  # {
                return self._parse_literal_head(line, pos)
            elif c == 0x7E and pos + 1 < n and line[pos + 1] == 0x7B:
                # RFC 3516 literal8 `~{n}` (APPEND of binary data).
                return self._parse_literal_head(line, pos + 1)
            else:
                pos = self._parse_atom(line, pos)
            if pos < n and line[pos] not in b" )":
                raise self._error("Missing space between arguments")
        if len(self._stack) != 1:
            raise self._error("Missing ')'")
        cmd = Command(self.tag, self.name, self._stack[0])
        self.reset()
        return cmd

    def _parse_quoted(self, line: bytes, pos: int) -> int:
        out = bytearray()
        pos += 1
        n = len(line)
        while pos < n:
            c = line[pos]
            if c == 0x22:
                self._stack[-1].append(String(bytes(out)))
                return pos + 1
            if c == 0x5C:  # backslash: RFC 3501 9 has only \" and \\, but
                # Dovecot's imap-parser takes any escaped byte as itself.
                pos += 1
                if pos >= n:
                    break
                c = line[pos]
            elif c == 0:
                raise self._error("NUL in quoted string")
            out.append(c)
            pos += 1
        raise self._error("Missing '\"'")

    def _parse_literal_head(self, line: bytes, pos: int) -> NeedLiteral:
        end = line.find(b"}", pos)
        if end < 0 or end != len(line) - 1:
            raise self._error("Invalid literal size")
        body = line[pos + 1:end]
        sync = True
        if body.endswith((b"+", b"-")):
            sync = False
            body = body[:-1]
        if not body or not body.isdigit() or len(body) > 10:
            raise self._error("Invalid literal size")
        size = int(body)
        # A refused non-synchronising literal is already on its way: the
        # caller must swallow it to stay in step (RFC 7888 section 4).
        skip = 0 if sync else size
        if self.literal_minus and not sync and size > 4096:
            raise self._error("Non-synchronizing literal too large", skip)
        if self.name == "APPEND":
            if size > self.max_append:
                raise CommandSyntaxError("Mail too large", self.tag, skip,
                                         code="TOOBIG", kind="NO")
        elif size > self.max_literal:
            raise self._error("Literal too large", skip)
        self._pending_literal = size
        return NeedLiteral(size, sync, self.tag, self.name)

    def _parse_atom(self, line: bytes, pos: int) -> int:
        n = len(line)
        start = pos
        while pos < n:
            c = line[pos]
            if c == 0x5B:  # [ : a FETCH section, kept whole up to its ]
                depth = 0
                while pos < n:
                    if line[pos] == 0x5B:
                        depth += 1
                    elif line[pos] == 0x5D:
                        depth -= 1
                        if depth == 0:
                            break
                    pos += 1
                if pos >= n:
                    # The command's own grammar says what is wrong (FETCH:
                    # "Invalid BODY[..] parameter: Missing ']'", as Dovecot).
                    break
                pos += 1
                continue
            if c in _ATOM_STOP or c < 0x20 or c == 0x7F:
                break
            if c >= 0x80:
                raise self._error("8bit data in atom")  # imap-parser.c
            pos += 1
        if pos == start:
            raise self._error("Unexpected character")
        raw = line[start:pos]
        if pos < n and line[pos] in b'{"(':
            raise self._error("Missing space between arguments")
        self._stack[-1].append(Atom(raw.decode("utf-8", "surrogateescape")))
        return pos


class CommandReader:
    """Byte-stream framing around CommandParser (h11 style): `feed()` any
    chunks, then call `next_event()` until it returns None (more input
    needed). Events are Command, NeedLiteral (send `+ OK` when
    synchronizing) or CommandSyntaxError instances (answer BAD and go on).
    The session itself reads through Connection; this serves tools and tests
    that hold raw bytes."""

    def __init__(self, max_line: int = 64 * 1024, max_literal: int = 64 * 1024) -> None:
        self.parser = CommandParser(max_literal=max_literal)
        self.max_line = max_line
        self._buf = bytearray()
        self._literal: int | None = None
        self._skip = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_event(self) -> Command | NeedLiteral | CommandSyntaxError | None:
        if self._skip:
            k = min(self._skip, len(self._buf))
            del self._buf[:k]
            self._skip -= k
            if self._skip:
                return None
        if self._literal is not None:
            if len(self._buf) < self._literal:
                return None
            data = bytes(self._buf[: self._literal])
            del self._buf[: self._literal]
            self._literal = None
            self.parser.feed_literal(data)
        idx = self._buf.find(b"\n")
        if idx < 0:
            if len(self._buf) > self.max_line:
                self._buf.clear()
                self.parser.reset()
                return CommandSyntaxError("Too long argument.")
            return None
        line = bytes(self._buf[: idx + 1])
        del self._buf[: idx + 1]
        if len(line) > self.max_line:
            self.parser.reset()
            return CommandSyntaxError("Too long argument.")
        try:
            event = self.parser.feed_line(line)
        except CommandSyntaxError as exc:
            self._skip = exc.skip_literal
            return exc
        if isinstance(event, NeedLiteral):
            self._literal = event.size
        return event
