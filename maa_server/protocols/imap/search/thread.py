"""THREAD=ORDEREDSUBJECT, THREAD=REFERENCES (RFC 5256 section 3) and Dovecot's THREAD=REFS.

REFS is Dovecot's own variant of REFERENCES: no merging by subject, and the
threads ordered by their newest message (captured).

Inputs come from what the index caches with the message structure (Subject,
Date, Message-ID, In-Reply-To, References in MessageStructure.headers), so
threading reads no message files. Dates are SORT's DATE (the Date: field,
else the internal date); ties go by sequence number. The steps below are
numbered as in RFC 5256; the answers were checked against Dovecot 2.3 on
tests/unit/imap_fetch/fixtures/dovecot_thread.json (missing parents, a
duplicate Message-ID, subject merges of replies, forwards and equals).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.search.sort import (
    _collate,
    extract_base_subject,
    sent_time,
)
from maa_server.protocols.imap.tokens import Arg, Atom
from maa_server.storage.interface import Mailbox, MessageInfo, NoSuchMessage

# In Dovecot's CAPABILITY order: THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT.
THREAD_ALGORITHMS = ("REFERENCES", "REFS", "ORDEREDSUBJECT")

_MSGID = re.compile(r"<([^<>\s]+)>")


def parse_thread_algorithm(arg: Arg) -> str:
    """The THREAD command's first argument; Dovecot's texts (cmd-thread.c)."""
    if not isinstance(arg, Atom):
        raise ImapParseError("Invalid arguments")
    name = arg.value.upper()
    if name not in THREAD_ALGORITHMS:
        raise ImapParseError("Unknown thread algorithm")
    return name


@dataclass(slots=True)
class _Message:
    seq: int
    date: float
    subject: str  # collated base subject
    is_reply: bool
    message_id: str | None
    references: list[str]


@dataclass(eq=False, slots=True)
class ThreadNode:
    """A message, or a dummy (message None) standing for a missing parent."""

    message: _Message | None = None
    parent: ThreadNode | None = None
    children: list[ThreadNode] = field(default_factory=list)

    def sort_key(self) -> tuple[float, int]:
        node = self
        while node.message is None and node.children:
            node = node.children[0]
        return (node.message.date, node.message.seq) if node.message else (0.0, 0)

    def newest(self) -> tuple[float, int]:
        """The latest (date, seq) in this subtree (REFS orders threads by it)."""
        best = (self.message.date, self.message.seq) if self.message else (0.0, 0)
        for child in self.children:
            best = max(best, child.newest())
        return best

    def subject(self) -> str:
        node = self if self.message is not None or not self.children else self.children[0]
        return node.message.subject if node.message else ""


def _link(parent: ThreadNode, child: ThreadNode) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def _would_loop(parent: ThreadNode, child: ThreadNode) -> bool:
    """Would making `child` a child of `parent` create a cycle?"""
    node: ThreadNode | None = parent
    while node is not None:
        if node is child:
            return True
        node = node.parent
    return False


async def _load(seqs: Sequence[int], view: Sequence[tuple[int, MessageInfo]],
                mailbox: Mailbox) -> list[_Message]:
    infos = dict(view)
    out = []
    for seq in seqs:
        info = infos[seq]
        try:
            headers = (await mailbox.structure(info.uid)).headers
        except NoSuchMessage:
            headers = {}
        base, is_reply = extract_base_subject(headers.get("subject", ""))
        ids = _MSGID.findall(headers.get("message-id", ""))
        references = _MSGID.findall(headers.get("references", ""))
        if not references:  # RFC 5256: else the first In-Reply-To id
            references = _MSGID.findall(headers.get("in-reply-to", ""))[:1]
        out.append(_Message(seq, sent_time(headers.get("date"), info), _collate(base),
                            is_reply, ids[0] if ids else None, references))
    return out


def _ordered_subject(messages: list[_Message]) -> list[ThreadNode]:
    """ORDEREDSUBJECT: group by base subject, each group in date order under
    its first message; groups in the order of their first message."""
    groups: dict[str, list[_Message]] = {}
    for msg in sorted(messages, key=lambda m: (m.date, m.seq)):
        groups.setdefault(msg.subject, []).append(msg)
    roots = []
    for members in groups.values():
        root = ThreadNode(members[0])
        for msg in members[1:]:
            _link(root, ThreadNode(msg))
        roots.append(root)
    return roots


def _references(messages: list[_Message], merge_subjects: bool = True) -> list[ThreadNode]:
    table: dict[str, ThreadNode] = {}
    nodes: list[ThreadNode] = []

    def container(msgid: str) -> ThreadNode:
        node = table.get(msgid)
        if node is None:
            node = table[msgid] = ThreadNode()
            nodes.append(node)
        return node

    for msg in messages:
        # (1) Duplicate or missing Message-IDs get an id of their own.
        key = msg.message_id
        if key is None or (key in table and table[key].message is not None):
            key = f"\x00{msg.seq}"
        node = container(key)
        node.message = msg
        # (1)(A) chain the references, never re-parenting or looping
        previous: ThreadNode | None = None
        for ref in msg.references:
            current = container(ref)
            if previous is not None and current.parent is None \
                    and not _would_loop(previous, current):
                _link(previous, current)
            previous = current
        # (1)(B) the last reference is the parent; a truncated References
        # may have linked it elsewhere before
        if node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
        if previous is not None and not _would_loop(previous, node):
            _link(previous, node)

    # (2) everything without a parent hangs off the root; (3) prune dummies
    roots = _prune([n for n in nodes if n.parent is None], top=True)
    if not merge_subjects:  # REFS
        _sort_tree(roots)
        roots.sort(key=ThreadNode.newest)
        return roots
    # (4) top-level siblings by date (a dummy by its first child)
    for node in roots:
        _sort_tree(node.children)
    roots.sort(key=ThreadNode.sort_key)
    roots = _merge_subjects(roots)
    # (6) every set of siblings by date, the youngest first
    _sort_tree(roots)
    return roots


def _prune(children: list[ThreadNode], top: bool) -> list[ThreadNode]:
    kept: list[ThreadNode] = []
    for node in children:
        node.children = _prune(node.children, top=False)
        for child in node.children:
            child.parent = node
        if node.message is None:
            if not node.children:
                continue
            # Promote a dummy's children, but not several of them to the root.
            if not top or len(node.children) == 1:
                for child in node.children:
                    child.parent = None if top else node.parent
                kept.extend(node.children)
                continue
        kept.append(node)
    return kept


def _sort_tree(siblings: list[ThreadNode]) -> None:
    for node in siblings:
        _sort_tree(node.children)
    siblings.sort(key=ThreadNode.sort_key)


def _merge_subjects(roots: list[ThreadNode]) -> list[ThreadNode]:
    """(5) Threads whose first messages share a base subject are joined."""
    table: dict[str, ThreadNode] = {}
    for node in roots:  # (5)(B)
        subject = node.subject()
        if not subject:
            continue
        holder = table.get(subject)
        if holder is None:
            table[subject] = node
        elif holder.message is not None and (
                node.message is None or (holder.message.is_reply and not node.message.is_reply)):
            table[subject] = node
    result = list(roots)
    for node in list(roots):  # (5)(C)
        if node not in result:
            continue
        subject = node.subject()
        holder = table.get(subject) if subject else None
        if holder is None or holder is node:
            continue
        result.remove(node)
        if holder.message is None and node.message is None:
            for child in list(node.children):
                _link(holder, child)
        elif holder.message is None:
            _link(holder, node)
        elif node.message is not None and node.message.is_reply \
                and not holder.message.is_reply:
            _link(holder, node)
        else:
            dummy = ThreadNode()
            result[result.index(holder)] = dummy
            _link(dummy, holder)
            _link(dummy, node)
            table[subject] = dummy
    return result


async def thread_messages(
    algorithm: str,
    seqs: Sequence[int],
    view: Sequence[tuple[int, MessageInfo]],
    mailbox: Mailbox,
) -> list[ThreadNode]:
    """Thread the sequence numbers `seqs` (a SEARCH result over `view`)."""
    messages = await _load(seqs, view, mailbox)
    if algorithm == "ORDEREDSUBJECT":
        return _ordered_subject(messages)
    return _references(messages, merge_subjects=algorithm == "REFERENCES")


def render_threads(roots: Sequence[ThreadNode],
                   number: Callable[[int], int] = lambda seq: seq) -> str:
    """The thread-list of `* THREAD ...` (RFC 5256 section 4): a chain of
    only children is written flat, siblings each in parentheses. `number`
    maps sequence numbers to what is sent (UIDs for UID THREAD)."""

    def one(node: ThreadNode) -> str:
        if node.message is None:
            return "(" + "".join(one(c) for c in node.children) + ")"
        parts = [str(number(node.message.seq))]
        current = node
        while len(current.children) == 1 and current.children[0].message is not None:
            current = current.children[0]
            assert current.message is not None
            parts.append(str(number(current.message.seq)))
        if current.children:
            parts.append("".join(one(c) for c in current.children))
        return "(" + " ".join(parts) + ")"

    return "".join(one(root) for root in roots)
