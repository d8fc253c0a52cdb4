"""MIME part tree over byte offsets, cut as Dovecot's message-parser.c cuts it.

One pass over the message with a stack of open parts and active boundaries:

- A boundary line starts with "--" at a line start; the boundary is found by
  prefix match against every active boundary, innermost first, preferring the
  longest match (Dovecot's boundary_find()). The line end before a boundary
  line belongs to the boundary (RFC 2046 5.1.1).
- "--b--" closes the multipart; what follows is its epilogue, up to a boundary
  of an enclosing multipart or the end.
- Dovecot 2.3.11+ limits: parts nested 99 deep can no longer be containers
  (they become application/octet-stream leaves), and after 10,000 parts no
  more boundaries are looked for (message-parser.h: max_nested_mime_parts =
  100, max_total_mime_parts = 10000).

Only the header fields IMAP needs are decoded here (content.py); bodies are
never copied: sizes and line counts come from bytes.count over ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .content import ContentInfo, parse_content_info
from .headers import HeaderField, parse_header_block

MAX_NESTED_MIME_PARTS = 100
MAX_TOTAL_MIME_PARTS = 10000

LEAF = 0
MULTIPART = 1
RFC822 = 2


@dataclass(slots=True, eq=False)
class MimePart:
    start: int  # first header byte
    header_end: int  # start of the empty line (== body_start when none)
    body_start: int
    end: int  # body end (exclusive); the line end before a boundary excluded
    fields: list[HeaderField]
    info: ContentInfo
    kind: int
    depth: int
    boundary: bytes | None = None
    children: list[MimePart] = field(default_factory=list)


class _Boundary:
    __slots__ = ("owner", "text")

    def __init__(self, text: bytes, owner: MimePart) -> None:
        self.text = text
        self.owner = owner


class _MimeParser:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.n = len(raw)
        self.boundaries: list[_Boundary] = []
        # All active boundary texts, for a C-level first check of "--" lines
        # (a 10 MB message of non-boundary "--" lines stays fast).
        self._texts: tuple[bytes, ...] | None = None
        self.open_parts: list[MimePart] = []
        self.total_parts = 0

    # Boundary lines ------------------------------------------------------

    def find_boundary(self, pos: int) -> tuple[_Boundary, int, bool] | None:
        """The boundary whose line starts at pos: (boundary, line end, is_close)."""
        raw = self.raw
        if not raw.startswith(b"--", pos) or self.total_parts >= MAX_TOTAL_MIME_PARTS:
            return None
        nl = raw.find(b"\n", pos, self.n)
        line_end = self.n if nl < 0 else nl + 1
        stop = self.n if nl < 0 else nl
        if stop > pos + 2 and raw[stop - 1] == 0x0D:
            stop -= 1
        text = raw[pos + 2 : stop]
        if self._texts is None:
            self._texts = tuple(b.text for b in self.boundaries)
        if not text.startswith(self._texts):
            return None
        best: _Boundary | None = None
        for b in reversed(self.boundaries):
            blen = len(b.text)
            if text.startswith(b.text) and (best is None or len(best.text) < blen):
                best = b
                if blen == len(text):
                    break
        if best is None:
            return None
        after = pos + 2 + len(best.text)
        return best, line_end, raw.startswith(b"--", after)

    def _is_boundary(self, pos: int) -> bool:
        return self.find_boundary(pos) is not None

    # Parts ---------------------------------------------------------------

    def new_part(
        self, start: int, depth: int, in_multipart: bool, in_digest: bool = False
    ) -> MimePart:
        self.total_parts += 1
        fields, header_end, body_start = parse_header_block(
            self.raw, start, self.n, self._is_boundary if self.boundaries else None
        )
        # Dovecot ignores Content-ID, -Disposition, -Language, ... of a
        # message (top level or message/rfc822) that has neither a
        # MIME-Version nor a Content-Type field; parts of a multipart
        # always count (seen by differential testing against Dovecot 2.3).
        is_mime = in_multipart or any(
            f.lname in ("mime-version", "content-type") for f in fields
        )
        info = parse_content_info(fields, in_digest, is_mime)
        kind = LEAF
        boundary = None
        if info.is_multipart or info.is_rfc822:
            if depth >= MAX_NESTED_MIME_PARTS - 1:
                info.overflow = True  # too deep: an opaque leaf
            elif info.is_multipart:
                kind = MULTIPART
                # A header cut short by an enclosing boundary never got to
                # its body: its own boundary is not looked for.
                if not header_end == body_start < self.n:
                    boundary = info.boundary
            else:
                kind = RFC822
        return MimePart(
            start, header_end, body_start, self.n, fields, info, kind, depth, boundary
        )

    def open(self, part: MimePart) -> int:
        """Push part (and an rfc822 part's message); returns where content starts."""
        while True:
            self.open_parts.append(part)
            if part.kind == MULTIPART:
                if part.boundary is not None:
                    self.boundaries.append(_Boundary(part.boundary, part))
                    self._texts = None
                return part.body_start
            if part.kind == RFC822:
                child = self.new_part(part.body_start, part.depth + 1, False)
                part.children.append(child)
                part = child
                continue
            return part.body_start

    def close_to(self, owner: MimePart, line: int, content_end: int) -> None:
        """Close the parts inside `owner` at a boundary line starting at `line`.

        The line end before the boundary (line - content_end bytes) belongs
        to the boundary. Dovecot takes it from the innermost part that holds
        bytes: from its body normally, and then its enclosing parts stop
        before it too; but when that part has no body yet (a header cut off
        by the boundary, or an empty body right after the empty line), the
        header loses it while the enclosing parts, which had already counted
        the header, keep it (message-parser.c; seen in 39_empty_rfc822.eml).
        """
        popped: list[MimePart] = []
        while self.open_parts[-1] is not owner:
            popped.append(self.open_parts.pop())
        while self.boundaries and self.boundaries[-1].owner is not owner:
            self.boundaries.pop()
            self._texts = None
        outer_end = content_end
        for p in popped:
            if p.start >= line:
                p.end = max(p.body_start, line)  # empty: nothing read yet
                continue
            if p.body_start < line:
                p.end = max(content_end, p.body_start)
            elif content_end < line:
                p.header_end = min(p.header_end, content_end)
                p.body_start = p.end = content_end
                outer_end = line
            else:
                p.end = line
            idx = popped.index(p)
            for q in popped[idx + 1 :]:
                q.end = max(outer_end, q.body_start)
            return

    def parse(self) -> MimePart:
        raw = self.raw
        root = self.new_part(0, 0, False)
        region_start = 0  # where the current part or epilogue began
        pos = self.open(root)
        check_here = True
        while self.boundaries:
            if check_here and raw.startswith(b"--", pos):
                line = pos
            else:
                i = raw.find(b"\n--", pos)
                if i < 0:
                    break
                line = i + 1
            check_here = False
            found = self.find_boundary(line)
            if found is None:
                pos = line
                if self.total_parts >= MAX_TOTAL_MIME_PARTS:
                    break
                continue
            b, line_end, closing = found
            content_end = line
            if line > region_start:
                content_end -= 1  # the "\n" found before "--"
                if content_end > region_start and raw[content_end - 1] == 0x0D:
                    content_end -= 1
            owner = b.owner
            self.close_to(owner, line, content_end)
            region_start = line_end
            if closing or raw[line_end - 1] != 0x0A:
                # "--b--", or a last line "--b" without a line end: Dovecot
                # ends the part there but starts no new one.
                if closing:
                    self.boundaries.pop()  # epilogue: this boundary is done
                    self._texts = None
                pos = line_end
            else:
                child = self.new_part(
                    line_end, owner.depth + 1, True, owner.info.is_digest
                )
                owner.children.append(child)
                pos = self.open(child)
            check_here = True
        for p in self.open_parts:
            p.end = max(self.n, p.body_start)
        return root


def parse_mime(raw: bytes) -> MimePart:
    """The part tree of a message (never raises)."""
    return _MimeParser(raw).parse()
