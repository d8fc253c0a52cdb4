"""The POP3 maildrop of one session: the snapshot taken at login and what the
client did to it, sans-IO.

RFC 1939 section 4: the message list is fixed for the session; DELE only
marks, RSET unmarks, and nothing changes on disk before QUIT (UPDATE state).
Dovecot also defers the `\\Seen` flags of RETR to QUIT (src/pop3/
pop3-commands.c: `seen_bitmask`, applied by update_mails()), so a dropped
connection neither deletes nor marks anything: observed against Dovecot
2.3.19, a RETR followed by a dropped connection leaves the file without `S`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from maa_server.protocols.pop3.parser import ArgumentError, parse_msgnum
from maa_server.storage.interface import MessageInfo


class MessageDeleted(ArgumentError):
    def __init__(self) -> None:
        super().__init__("Message is deleted.")


@dataclass(slots=True)
class TransferStats:
    """Counters for pop3_logout_format (%t %p %r %b)."""

    top_count: int = 0
    top_bytes: int = 0
    retr_count: int = 0
    retr_bytes: int = 0


@dataclass
class Maildrop:
    messages: Sequence[MessageInfo]
    uidls: list[str]
    deleted: set[int] = field(default_factory=set)  # 0-based indexes
    seen: set[int] = field(default_factory=set)  # RETR'd, \Seen to be set at QUIT
    stats: TransferStats = field(default_factory=TransferStats)
    uidls_unavailable: bool = False  # pop3_uidl_format needs data we don't have

    def __post_init__(self) -> None:
        self.initial_count = len(self.messages)
        self.initial_size = sum(m.size for m in self.messages)

    # --- lookups ---------------------------------------------------------

    def message(self, args: str, then_space: bool = False) -> tuple[int, str]:
        """Parse a message-number argument; deleted messages are refused."""
        index, rest = parse_msgnum(args, len(self.messages), then_space)
        if index in self.deleted:
            raise MessageDeleted()
        return index, rest

    def live(self) -> list[int]:
        return [i for i in range(len(self.messages)) if i not in self.deleted]

    @property
    def live_count(self) -> int:
        return len(self.messages) - len(self.deleted)

    @property
    def live_size(self) -> int:
        return sum(self.messages[i].size for i in self.live())

    # --- changes ---------------------------------------------------------

    def delete(self, index: int) -> None:
        self.deleted.add(index)

    def reset(self) -> None:
        """RSET: undo DELE and the pending \\Seen marks (Dovecot cmd_rset)."""
        self.deleted.clear()
        self.seen.clear()

    def deleted_uids(self) -> list[int]:
        return sorted(self.messages[i].uid for i in self.deleted)

    def seen_uids(self) -> list[int]:
        return sorted(self.messages[i].uid for i in self.seen - self.deleted)

    def deleted_bytes(self) -> int:
        return sum(self.messages[i].size for i in self.deleted)
