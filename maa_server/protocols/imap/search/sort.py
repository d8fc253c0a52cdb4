"""SORT (RFC 5256) with DISPLAYFROM/DISPLAYTO (RFC 5957), ordered as Dovecot orders.

Every key comes from what the index caches: the MessageInfo (ARRIVAL, SIZE)
and the ENVELOPE of MessageStructure (DATE, FROM, TO, CC, SUBJECT, DISPLAY*),
so a SORT never reads message files. Behaviour captured from Dovecot 2.3 in
tests/unit/imap_fetch/fixtures/dovecot_sort*.json:

- DATE is the Date: field as an instant (UTC); without a usable one, the
  internal date (RFC 5256 section 2.2).
- FROM/TO/CC compare the mailbox (local part) of the first address; a group
  counts by its name (`undisclosed-recipients:;`).
- SUBJECT compares the RFC 5256 section 2.1 base subject.
- Strings are compared upper-cased and decomposed (Dovecot's "decomposed
  titlecase"), so `Émile` sorts with the E's.
- Ties are broken by sequence number, ascending even under REVERSE.
"""

from __future__ import annotations

import email.utils
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from maa_server.protocols.imap.errors import ImapParseError
from maa_server.protocols.imap.search.text import fold
from maa_server.protocols.imap.tokens import Arg, Atom
from maa_server.storage.interface import Mailbox, MessageInfo, NoSuchMessage
from maa_server.storage.message.headers import decode_rfc2047

SORT_KEYS = frozenset({
    "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO",
})
ENVELOPE_KEYS = frozenset({"CC", "DATE", "FROM", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"})


@dataclass(frozen=True, slots=True)
class SortCriterion:
    key: str
    reverse: bool = False


def parse_sort_criteria(arg: Arg) -> tuple[SortCriterion, ...]:
    """`(REVERSE DATE SUBJECT)`; Dovecot's error texts (cmd-sort.c)."""
    if not isinstance(arg, list):
        raise ImapParseError("Invalid sort argument")
    if not arg:
        raise ImapParseError("Empty sort program")
    out: list[SortCriterion] = []
    reverse = False
    for element in arg:
        if not isinstance(element, Atom):
            raise ImapParseError("Invalid sort argument")
        name = element.value.upper()
        if name == "REVERSE":
            reverse = not reverse  # captured: REVERSE REVERSE SIZE sorts ascending
            continue
        if name not in SORT_KEYS:
            raise ImapParseError(f"Unknown sort argument: {name}")
        out.append(SortCriterion(name, reverse))
        reverse = False
    if reverse:
        raise ImapParseError("Sort list ends with REVERSE")
    return tuple(out)


# -- base subject (RFC 5256 section 2.1) -------------------------------------------

_WSP = re.compile(r"[ \t\r\n]+")
_TRAILER = re.compile(r"(?:\s|\(fwd\))+$", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\]\s*"
_LEADER = re.compile(rf"^(?:\s+|(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:)", re.IGNORECASE)
_LEADING_BLOB = re.compile(rf"^{_BLOB}")
_FWD_WRAPPER = re.compile(r"^\[fwd:(.*)\]$", re.IGNORECASE | re.DOTALL)


def base_subject(subject: str) -> str:
    """The RFC 5256 base subject of an already decoded Subject."""
    return extract_base_subject(subject)[0]


def extract_base_subject(subject: str) -> tuple[str, bool]:
    """(base subject, whether it was a reply or forward): RFC 5256 2.1, where
    removing a "Re:"/"Fwd:" leader, a "(fwd)" trailer or a "[fwd: ]"
    wrapper marks a reply or forward (used by THREAD=REFERENCES)."""
    text = _WSP.sub(" ", subject)  # (1) whitespace runs become one space
    is_reply = False
    while True:
        trimmed = _TRAILER.sub("", text)  # (2) trailing "(fwd)" and blanks
        if "(" in text[len(trimmed):]:
            is_reply = True
        text = trimmed
        while True:  # (3)-(5) leaders and a leading blob with text after it
            leader = _LEADER.match(text)
            stripped = text[leader.end():] if leader else text
            if leader and not leader.group(0).isspace():
                is_reply = True  # a "Re:" / "Fwd:" leader, not just blanks
            if stripped == text:
                blob = _LEADING_BLOB.match(text)
                if blob and text[blob.end():]:
                    stripped = text[blob.end():]
            if stripped == text:
                break
            text = stripped
        wrapped = _FWD_WRAPPER.match(text)  # (6) "[fwd: ...]"
        if not wrapped:
            return text, is_reply
        is_reply = True
        text = wrapped.group(1)


def _collate(text: str) -> str:
    """Dovecot compares sort strings as decomposed titlecase."""
    return fold(text)


# -- ENVELOPE reading ---------------------------------------------------------------

_TOKEN = re.compile(rb'\s*(?:(\()|(\))|(NIL)|"((?:[^"\\]|\\.)*)"|\{(\d+)\}\r\n)', re.DOTALL)

Sexp = bytes | None | list["Sexp"]


def parse_envelope(data: bytes) -> list[Sexp]:
    """The ENVELOPE list (IMAP strings, NIL, lists) as nested Python lists."""
    stack: list[list[Sexp]] = [[]]
    pos = 0
    while pos < len(data):
        match = _TOKEN.match(data, pos)
        if not match:
            break
        pos = match.end()
        if match.group(1):
            stack.append([])
        elif match.group(2):
            if len(stack) == 1:
                break
            done = stack.pop()
            stack[-1].append(done)
        elif match.group(3):
            stack[-1].append(None)
        elif match.group(5) is not None:
            size = int(match.group(5))
            stack[-1].append(data[pos:pos + size])
            pos += size
        else:
            stack[-1].append(re.sub(rb"\\(.)", rb"\1", match.group(4)))
    top = stack[0]
    return top[0] if top and isinstance(top[0], list) else []


def _text(value: Sexp) -> str:
    return decode_rfc2047(value) if isinstance(value, bytes) else ""


def _first_address(envelope: list[Sexp], index: int) -> list[Sexp] | None:
    if len(envelope) <= index or not isinstance(envelope[index], list):
        return None
    addresses = envelope[index]
    assert isinstance(addresses, list)
    first = addresses[0] if addresses else None
    return first if isinstance(first, list) and len(first) == 4 else None


def _mailbox_key(envelope: list[Sexp], index: int) -> str:
    addr = _first_address(envelope, index)
    return _collate(_text(addr[2])) if addr else ""


def _display_key(envelope: list[Sexp], index: int) -> str:
    """RFC 5957: the display name, else the addr-spec."""
    addr = _first_address(envelope, index)
    if not addr:
        return ""
    name = _text(addr[0]).strip()
    if name:
        return _collate(name)
    mailbox, host = _text(addr[2]), _text(addr[3])
    return _collate(f"{mailbox}@{host}" if host else mailbox)


def sent_time(value: str | None, info: MessageInfo) -> float:
    """SORT's DATE (RFC 5256 2.2), also THREAD's: the Date: field as an
    instant, else the internal date."""
    parsed = email.utils.parsedate_tz(value) if value else None
    if parsed is None:
        return info.internal_date
    try:
        return float(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError):
        return info.internal_date


def _sent_time(envelope: list[Sexp], info: MessageInfo) -> float:
    return sent_time(_text(envelope[0]) if envelope else "", info)


# Envelope fields: date, subject, from, sender, reply-to, to, cc, bcc, ...
_ENV_INDEX = {"FROM": 2, "TO": 5, "CC": 6, "DISPLAYFROM": 2, "DISPLAYTO": 5}


def _key(criterion: SortCriterion, info: MessageInfo, envelope: list[Sexp]) -> str | float:
    name = criterion.key
    if name == "ARRIVAL":
        return info.internal_date
    if name == "SIZE":
        return float(info.size)
    if name == "DATE":
        return _sent_time(envelope, info)
    if name == "SUBJECT":
        return _collate(base_subject(_text(envelope[1]) if len(envelope) > 1 else ""))
    if name.startswith("DISPLAY"):
        return _display_key(envelope, _ENV_INDEX[name])
    return _mailbox_key(envelope, _ENV_INDEX[name])


async def sort_messages(
    criteria: Sequence[SortCriterion],
    seqs: Sequence[int],
    view: Sequence[tuple[int, MessageInfo]],
    mailbox: Mailbox,
) -> list[int]:
    """Order the sequence numbers `seqs` (a SEARCH result over `view`) by
    `criteria`. Messages expunged meanwhile sort as if they had no headers."""
    infos = dict(view)
    need_envelope = any(c.key in ENVELOPE_KEYS for c in criteria)
    rows: list[tuple[int, list[str | float]]] = []
    for seq in seqs:
        info = infos[seq]
        envelope: list[Sexp] = []
        if need_envelope:
            try:
                envelope = parse_envelope((await mailbox.structure(info.uid)).envelope)
            except NoSuchMessage:
                envelope = []
        rows.append((seq, [_key(c, info, envelope) for c in criteria]))

    def compare(a: tuple[int, list[str | float]], b: tuple[int, list[str | float]]) -> int:
        for criterion, x, y in zip(criteria, a[1], b[1], strict=True):
            if x != y:
                result = -1 if x < y else 1  # type: ignore[operator]
                return -result if criterion.reverse else result
        return -1 if a[0] < b[0] else (1 if a[0] > b[0] else 0)

    rows.sort(key=functools.cmp_to_key(compare))
    return [seq for seq, _ in rows]
