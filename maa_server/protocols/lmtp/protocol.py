"""aiosmtpd's LMTP with Dovecot's replies (spec 8.1, 8.2).

aiosmtpd reads lines and DATA (dot-unstuffing, size and line limits); this
subclass replaces the commands whose replies or rules differ from Dovecot's
LMTP server (src/lib-smtp/smtp-server-cmd-*.c): enhanced status codes on
every reply, MAIL allowed before LHLO, Dovecot's path errors, one
transaction/recipient id scheme, and after DATA one reply per recipient
(RFC 2033 section 4.2), produced by the handler in server.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.lmtp import LMTP

from maa_server.auth.interface import ClientInfo
from maa_server.logs import get_log
from maa_server.protocols.lmtp.address import (
    Address,
    PathError,
    decode_xtext,
    parse_params,
    parse_path,
)
from maa_server.protocols.lmtp.recipients import (
    Recipient,
    Refusal,
    detail_of,
    resolve_recipient,
)
from maa_server.protocols.lmtp.settings import DeliverySettings

# src/lib-smtp/smtp-server.h: max_bad_commands default
MAX_BAD_COMMANDS = 10
# Replies that count as a bad command: syntax and sequence errors only; a
# refused recipient (550) does not count (observed: Dovecot takes 10 such
# errors and answers the 11th with 421, unknown users aside).
_BAD_COMMAND_CODES = frozenset({"500", "501", "502", "503", "504", "555"})
# src/lib-smtp/smtp-command-parser.c: a command's parameters may take 4 KiB
# (SMTP_COMMAND_PARSER_MAX_PARAMETERS_SIZE); a longer line gets
# "500 5.5.2 Line too long" and the session goes on (observed, 2.3.19:
# `NOOP` + 4096 octets is accepted, + 4097 is not). aiosmtpd's own limit is
# RFC 5321's 512-octet line.
MAX_PARAMETERS_SIZE = 4096
DATA_TOO_BIG = "552 5.2.3 Message size exceeds administrative limit"
DATA_LINE_TOO_LONG = "500 5.5.2 Line too long"

# aiosmtpd's own texts on the paths we keep (DATA reading, limits, parse
# failures of the line reader) -> what Dovecot answers there.
DOVECOT_TEXTS = {
    "354 End data with <CR><LF>.<CR><LF>": "354 OK",
    "500 Line too long (see RFC5321 4.5.3.1.6)": DATA_LINE_TOO_LONG,
    "552 Error: Too much mail data": DATA_TOO_BIG,
    "500 Command line too long": "500 5.5.2 Line too long",
    "500 Error: bad syntax": "500 5.5.2 Invalid command syntax",
    "500 Error: strict ASCII mode": "500 5.5.2 Invalid command syntax",
    "501 Syntax: DATA": "501 5.5.4 Invalid parameters",
    "220 Ready to start TLS": "220 2.0.0 Begin TLS negotiation now.",
}


_DATA_FAILURES = frozenset({"500 Line too long (see RFC5321 4.5.3.1.6)", "552 Error: Too much mail data"})


class _ParameterLimits(dict[str, int]):
    """aiosmtpd's per-command `len(line)` limits, as Dovecot counts them:
    the command name, a space and MAX_PARAMETERS_SIZE octets."""

    def __missing__(self, command: str) -> int:
        return len(command) + 1 + MAX_PARAMETERS_SIZE


@dataclass
class LmtpTransaction:
    """One MAIL..DATA transaction (RFC 5321 section 3.3)."""

    transaction_id: str
    mail_from: Address
    rcpt_commands: int = 0  # every RCPT counts for the :R<k> ids, failed ones too
    recipients: list[Recipient] = field(default_factory=list)


def _after_keyword(keyword: str, arg: str | None) -> str | None:
    """`FROM:<path>` -> `<path>`, keeping a space after the colon so that
    it can be refused as Dovecot does ("Unexpected whitespace before path")."""
    if arg is None or arg[:len(keyword)].upper() != keyword:
        return None
    return arg[len(keyword):]


class _CommandTable(dict[str, Any]):
    """aiosmtpd looks commands up with `.get()`; unknown ones come back as
    our handler so the reply is Dovecot's, not aiosmtpd's."""

    def __init__(self, methods: dict[str, Any], unknown: Callable[..., Any]) -> None:
        super().__init__(methods)
        self._unknown = unknown

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key) or self._unknown


class DovecotLMTP(LMTP):
    # RFC 5322 asks for 998, but real mail has longer lines and Dovecot stores
    # them as they are; this only bounds the buffer of one line.
    line_length_limit = 1024 * 1024

    def __init__(self, handler: Any, *, ctx: Any, settings: DeliverySettings, unix: bool,
                 session_id: str, tls_context: Any = None, data_size_limit: int | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(handler, hostname=settings.my_hostname, ident=settings.login_greeting,
                         tls_context=tls_context, data_size_limit=data_size_limit,
                         enable_SMTPUTF8=True, decode_data=False, loop=loop)
        self.ctx = ctx
        self.settings = settings
        self.unix = unix
        self.session_id = session_id
        self.transactions = 0
        self.txn: LmtpTransaction | None = None
        self.bad_commands = 0
        self.in_data_reply = False
        self.close_reason = "Connection closed"
        self.connected_logged = False
        self.log = get_log(f"lmtp({os.getpid()})")
        self._smtp_methods = _CommandTable(self._smtp_methods, self._unknown_command)
        # Before LHLO aiosmtpd uses the single limit; every verb has 4 letters.
        self.command_size_limits = _ParameterLimits()
        self.command_size_limit = 4 + 1 + MAX_PARAMETERS_SIZE

    # --- connection -------------------------------------------------------

    @property
    def client_ip(self) -> str:
        if self.unix or self.session is None:
            return ""
        peer = self.session.peer
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""

    @property
    def client_label(self) -> str:
        return self.client_ip or "local"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.connected_logged:
            self.connected_logged = True
            self.log.info(f"Connect from {self.client_label}")

    def connection_lost(self, error: Exception | None) -> None:
        state = "READY"
        if self.txn is not None:
            state = "RCPT TO" if self.txn.recipients else "MAIL FROM"
        self.log.info(f"Disconnect from {self.client_label}: {self.close_reason} (state={state})")
        super().connection_lost(error)

    def client_info(self) -> ClientInfo:
        peer = self.session.peer if self.session is not None else None
        port = int(peer[1]) if isinstance(peer, tuple) and len(peer) > 1 else 0
        transport = self.transport
        sock = transport.get_extra_info("sockname") if transport is not None else None
        local_ip = str(sock[0]) if isinstance(sock, tuple) else ""
        return ClientInfo(protocol="lmtp", remote_ip=self.client_ip, remote_port=port,
                          local_ip=local_ip, secured=self.tls_active or self.unix,
                          session_id=self.session_id)

    @property
    def tls_active(self) -> bool:
        return self._tls_protocol is not None

    def tls_description(self) -> str:
        transport = self.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return ""
        cipher = ssl_object.cipher() or ("", "", 0)
        bits = cipher[2] or 0
        return f"{ssl_object.version()} with cipher {cipher[0]} ({bits}/{bits} bits)"

    # --- replies ------------------------------------------------------------

    async def push(self, status: Any) -> None:
        if isinstance(status, bytes):
            status = status.decode("utf-8", "surrogateescape")
        original = status
        status = DOVECOT_TEXTS.get(status, status)
        if original in _DATA_FAILURES and self.txn is not None and self.txn.recipients:
            # The message was refused while it arrived: LMTP still owes one
            # reply per accepted recipient (RFC 2033 section 4.2).
            await super().push("\r\n".join([status] * len(self.txn.recipients)))
            return
        if status[:3] in _BAD_COMMAND_CODES and not self.in_data_reply:
            self.bad_commands += 1
            if self.bad_commands > MAX_BAD_COMMANDS:
                # src/lib-smtp/smtp-server-command.c: the 11th bad command ends it
                await super().push(f"421 4.7.0 {self.hostname} Too many invalid commands.")
                self.close_reason = "Too many invalid commands."
                if self.transport is not None:
                    self.transport.close()
                return
        await super().push(status)

    async def _unknown_command(self, arg: str | None) -> None:
        await self.push("500 5.5.1 Unknown command")

    # --- state ----------------------------------------------------------------

    def _set_post_data_state(self) -> None:
        super()._set_post_data_state()  # type: ignore[no-untyped-call]
        self.txn = None

    async def check_helo_needed(self, helo: str = "HELO") -> bool:
        return False  # Dovecot takes MAIL before LHLO (observed)

    # --- commands ---------------------------------------------------------------

    async def smtp_HELO(self, arg: str) -> None:
        await self._unknown_command(arg)

    async def smtp_EHLO(self, arg: str) -> None:
        await self._unknown_command(arg)

    async def smtp_HELP(self, arg: str) -> None:
        await self._unknown_command(arg)

    async def smtp_EXPN(self, arg: str) -> None:
        await self._unknown_command(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        await self._unknown_command(arg)

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.tls_context is None:
            await self._unknown_command(arg)
            return
        if self.tls_active:
            await self.push("502 5.5.1 TLS is already active.")
            return
        await super().smtp_STARTTLS(arg)

    async def smtp_LHLO(self, arg: str) -> None:
        if not arg:
            await self.push("501 5.5.4 Invalid parameters")
            return
        self._set_rset_state()  # type: ignore[no-untyped-call]
        assert self.session is not None
        self.session.host_name = arg.split()[0]
        self.session.extended_smtp = True
        # Alphabetical, as Dovecot sends them. No CHUNKING: aiosmtpd has no BDAT.
        caps = ["8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING"]
        if self.tls_context is not None and not self.tls_active:
            caps.append("STARTTLS")
        lines = [self.hostname, *caps]
        for line in lines[:-1]:
            await self.push(f"250-{line}")
        await self.push(f"250 {lines[-1]}")

    async def smtp_NOOP(self, arg: str) -> None:
        await self.push("250 2.0.0 OK")

    async def smtp_RSET(self, arg: str) -> None:
        self._set_rset_state()  # type: ignore[no-untyped-call]
        await self.push("250 2.0.0 OK")

    async def smtp_VRFY(self, arg: str) -> None:
        await self.push("252 2.3.3 Try RCPT instead")

    async def smtp_QUIT(self, arg: str) -> None:
        self.close_reason = "Logged out"
        await self.push("221 2.0.0 Bye")
        if self._handler_coroutine is not None:
            self._handler_coroutine.cancel()

    async def smtp_MAIL(self, arg: str | None) -> None:
        text = _after_keyword("FROM:", arg)
        if text is None:
            await self.push("501 5.5.4 Invalid parameters")
            return
        if self.txn is not None:
            await self.push("503 5.5.0 MAIL already given")
            return
        try:
            address, param_text = parse_path(text, allow_null=True)
            params = parse_params(param_text)
        except PathError as exc:
            await self.push(f"501 5.5.4 Invalid FROM: {exc}")
            return
        except ValueError:
            await self.push("501 5.5.4 Invalid FROM: Invalid parameters")
            return
        body = params.pop("BODY", "7BIT").upper()
        if body not in ("7BIT", "8BITMIME") or params:
            await self.push("555 5.5.4 Unsupported parameters")
            return
        self.transactions += 1
        txn_id = self.session_id if self.transactions == 1 else f"{self.session_id}:T{self.transactions}"
        self.txn = LmtpTransaction(txn_id, address)
        assert self.envelope is not None
        self.envelope.mail_from = str(address)
        await self.push("250 2.1.0 OK")

    async def smtp_RCPT(self, arg: str | None) -> None:
        if self.txn is None:
            await self.push("503 5.5.0 MAIL needed first")
            return
        text = _after_keyword("TO:", arg)
        if text is None:
            await self.push("501 5.5.4 Invalid parameters")
            return
        try:
            address, param_text = parse_path(text, allow_null=False)
            params = parse_params(param_text)
        except PathError as exc:
            await self.push(f"501 5.5.4 Invalid TO: {exc}")
            return
        except ValueError:
            await self.push("501 5.5.4 Invalid TO: Invalid parameters")
            return
        orcpt = params.pop("ORCPT", "")
        if params:
            await self.push("555 5.5.4 Unsupported parameters")
            return
        txn = self.txn
        txn.rcpt_commands += 1
        rcpt_id = txn.transaction_id if txn.rcpt_commands == 1 else \
            f"{txn.transaction_id}:R{txn.rcpt_commands}"
        delimiters = self.settings.recipient_delimiter
        resolved = await resolve_recipient(self.ctx.auth, address, delimiters, self.client_info())
        if self.txn is not txn:  # RSET or disconnect while the userdb answered
            return
        if isinstance(resolved, Refusal):
            await self.push(resolved.reply)
            return
        if orcpt:
            _, _, orcpt = orcpt.partition(";")
            orcpt = decode_xtext(orcpt)
        txn.recipients.append(Recipient(
            address=address, user=resolved, username=resolved.username or str(address),
            detail=detail_of(address, delimiters), rcpt_id=rcpt_id, orcpt=orcpt))
        assert self.envelope is not None
        self.envelope.rcpt_tos.append(str(address))
        await self.push("250 2.1.5 OK")

    async def smtp_DATA(self, arg: str) -> None:
        if self.txn is None:
            await self.push("503 5.5.0 MAIL needed first")
            return
        if not self.txn.recipients:
            await self.push("503 5.5.0 No valid recipients")
            return
        if arg:
            await self.push("501 5.5.4 Invalid parameters")
            return
        try:
            await super().smtp_DATA(arg)
        finally:
            self.in_data_reply = False
