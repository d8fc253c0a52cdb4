"""The command table: which handler serves a command, in which states,
whether others' changes are reported after it, and whether untagged
EXPUNGEs may be among them (RFC 3501 7.4.1: not after FETCH, STORE or
SEARCH, which would shift the numbers the client just used)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from maa_server.protocols.imap import (
    auth,
    idle,
    listing,
    mailboxes,
    messages,
    query,
    sorting,
)
from maa_server.protocols.imap.tokens import Arg

if TYPE_CHECKING:
    from maa_server.protocols.imap.session import ImapSession

Handler = Callable[["ImapSession", str, list[Arg], bool], Awaitable[str | None]]

NOT_AUTH = "not-authenticated"
AUTH = "authenticated"
SEL = "selected"
ANY = frozenset({NOT_AUTH, AUTH, SEL})
LOGGED_IN = frozenset({AUTH, SEL})
IN_MAILBOX = frozenset({SEL})
PRE_LOGIN = frozenset({NOT_AUTH})


@dataclass(frozen=True, slots=True)
class CommandSpec:
    handler: Handler
    states: frozenset[str]
    # Dovecot reports others' changes only after the commands that end in
    # cmd_sync (imap-sync.c): NOOP, CHECK, FETCH, STORE, SEARCH, SORT,
    # THREAD, COPY, MOVE, EXPUNGE, APPEND; not after LIST, STATUS, CREATE
    # and the like (observed).
    sync: bool = False
    allow_expunge: bool = True


SYNC = {"sync": True}
# RFC 3501 7.4.1: no EXPUNGE while answering FETCH, STORE or SEARCH (it
# would shift the numbers just used); their UID forms may, and Dovecot
# does (cmd-fetch.c: MAILBOX_SYNC_FLAG_NO_EXPUNGES only without UID).
NO_EXPUNGE = {"sync": True, "allow_expunge": False}


COMMANDS: dict[str, CommandSpec] = {
    # Any state
    "CAPABILITY": CommandSpec(auth.cmd_capability, ANY),
    "NOOP": CommandSpec(auth.cmd_noop, ANY, **SYNC),
    "LOGOUT": CommandSpec(auth.cmd_logout, ANY),
    "ID": CommandSpec(auth.cmd_id, ANY),
    # Not authenticated
    "STARTTLS": CommandSpec(auth.cmd_starttls, PRE_LOGIN),
    "LOGIN": CommandSpec(auth.cmd_login, PRE_LOGIN),
    "AUTHENTICATE": CommandSpec(auth.cmd_authenticate, PRE_LOGIN),
    # Authenticated
    "ENABLE": CommandSpec(auth.cmd_enable, ANY),
    "COMPRESS": CommandSpec(auth.cmd_compress, LOGGED_IN),
    "SELECT": CommandSpec(mailboxes.cmd_select, LOGGED_IN),
    "EXAMINE": CommandSpec(mailboxes.cmd_examine, LOGGED_IN),
    "CREATE": CommandSpec(mailboxes.cmd_create, LOGGED_IN),
    "DELETE": CommandSpec(mailboxes.cmd_delete, LOGGED_IN),
    "RENAME": CommandSpec(mailboxes.cmd_rename, LOGGED_IN),
    "SUBSCRIBE": CommandSpec(mailboxes.cmd_subscribe, LOGGED_IN),
    "UNSUBSCRIBE": CommandSpec(mailboxes.cmd_unsubscribe, LOGGED_IN),
    "LIST": CommandSpec(listing.cmd_list, LOGGED_IN),
    "LSUB": CommandSpec(listing.cmd_lsub, LOGGED_IN),
    # Gmail's old XLIST: Dovecot still answers it as LIST (observed).
    "XLIST": CommandSpec(listing.cmd_list, LOGGED_IN),
    "GETMETADATA": CommandSpec(mailboxes.cmd_metadata, LOGGED_IN),
    "SETMETADATA": CommandSpec(mailboxes.cmd_metadata, LOGGED_IN),
    "CANCELUPDATE": CommandSpec(query.cmd_cancelupdate, LOGGED_IN),
    "STATUS": CommandSpec(mailboxes.cmd_status, LOGGED_IN),
    "NAMESPACE": CommandSpec(mailboxes.cmd_namespace, LOGGED_IN),
    "APPEND": CommandSpec(messages.cmd_append, LOGGED_IN, **SYNC),
    "IDLE": CommandSpec(idle.cmd_idle, LOGGED_IN, **SYNC),
    # Selected
    "CHECK": CommandSpec(auth.cmd_check, IN_MAILBOX, **SYNC),
    "CLOSE": CommandSpec(messages.cmd_close, IN_MAILBOX),
    "UNSELECT": CommandSpec(messages.cmd_unselect, IN_MAILBOX),
    "EXPUNGE": CommandSpec(messages.cmd_expunge, IN_MAILBOX, **SYNC),
    "SEARCH": CommandSpec(query.cmd_search, IN_MAILBOX, **NO_EXPUNGE),
    "FETCH": CommandSpec(query.cmd_fetch, IN_MAILBOX, **NO_EXPUNGE),
    "STORE": CommandSpec(messages.cmd_store, IN_MAILBOX, **NO_EXPUNGE),
    "SORT": CommandSpec(sorting.cmd_sort, IN_MAILBOX, **NO_EXPUNGE),
    "THREAD": CommandSpec(sorting.cmd_thread, IN_MAILBOX, **NO_EXPUNGE),
    "COPY": CommandSpec(messages.cmd_copy, IN_MAILBOX, **SYNC),
    "MOVE": CommandSpec(messages.cmd_move, IN_MAILBOX, **SYNC),
    # RFC 3501 6.4.8 UID variants (RFC 7162 3.2.10: VANISHED with QRESYNC).
    "UID FETCH": CommandSpec(query.cmd_fetch, IN_MAILBOX, **SYNC),
    "UID SEARCH": CommandSpec(query.cmd_search, IN_MAILBOX, **SYNC),
    "UID STORE": CommandSpec(messages.cmd_store, IN_MAILBOX, **SYNC),
    "UID SORT": CommandSpec(sorting.cmd_sort, IN_MAILBOX, **SYNC),
    "UID THREAD": CommandSpec(sorting.cmd_thread, IN_MAILBOX, **SYNC),
    "UID COPY": CommandSpec(messages.cmd_copy, IN_MAILBOX, **SYNC),
    "UID MOVE": CommandSpec(messages.cmd_move, IN_MAILBOX, **SYNC),
    "UID EXPUNGE": CommandSpec(messages.cmd_expunge, IN_MAILBOX, **SYNC),
}


def syntax_error_text(name: str, text: str) -> str:
    """The tagged BAD for a command line the parser refused, after login:
    Dovecot looks the command up before it parses the arguments, so an
    unknown one is "Unknown command" whatever follows, and a known one
    names itself (imap-client.c client_command_input; e.g. `Error in IMAP
    command FETCH: Unexpected ')'.`)."""
    generic = "Error in IMAP command received by server."
    if not name or text == generic:
        return generic if text == generic else f"Error in IMAP command received by server: {text}"
    if name not in COMMANDS and name != "UID":
        return f"Error in IMAP command {name}: Unknown command."
    return f"Error in IMAP command {name}: {text.removesuffix('.')}."
