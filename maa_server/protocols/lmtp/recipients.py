"""RCPT TO -> a mail user (spec 8.3), and the per-recipient replies.

The detail is cut off at the first `recipient_delimiter` character; the rest
(`local@domain`, domain kept) goes to the userdb through the Authenticator,
which applies auth_username_format. src/lmtp/lmtp-local.c and
lmtp-recipient.c give the reply texts.
"""

from __future__ import annotations

from dataclasses import dataclass

from maa_server.auth.interface import Authenticator, ClientInfo, UserInfo
from maa_server.protocols.lmtp.address import Address, split_detail


@dataclass(frozen=True, slots=True)
class Recipient:
    """An accepted RCPT: who it is and how replies and headers name it."""

    address: Address  # as the client wrote it (with +detail)
    user: UserInfo
    username: str  # the userdb's name, for log prefixes (`lmtp(alice)`)
    detail: str
    rcpt_id: str  # `<session>[:T<n>][:R<k>]`
    orcpt: str = ""  # ORCPT address (RFC 3461), decoded


@dataclass(frozen=True, slots=True)
class Refusal:
    reply: str


async def resolve_recipient(auth: Authenticator, address: Address, delimiters: str,
                            client: ClientInfo) -> UserInfo | Refusal:
    local, _detail = split_detail(address.localpart, delimiters)
    lookup_name = f"{local}@{address.domain}" if address.domain else local
    try:
        user = await auth.lookup_user(lookup_name, client)
    except Exception:  # noqa: BLE001 - any userdb failure is a tempfail for this RCPT
        return Refusal(f"451 4.3.0 <{address}> Temporary internal error")
    if user is None:
        return Refusal(f"550 5.1.1 <{address}> User doesn't exist: {lookup_name}")
    return user


def detail_of(address: Address, delimiters: str) -> str:
    return split_detail(address.localpart, delimiters)[1]


def saved_reply(rcpt: Recipient) -> str:
    return f"250 2.0.0 <{rcpt.address}> {rcpt.rcpt_id} Saved"


def failed_reply(rcpt: Recipient, message: str, temporary: bool, quota: bool) -> str:
    if quota:
        return (f"452 4.2.2 <{rcpt.address}> {message}" if temporary
                else f"552 5.2.2 <{rcpt.address}> {message}")
    if temporary:
        return f"451 4.2.0 <{rcpt.address}> {message}"
    return f"554 5.2.0 <{rcpt.address}> {message}"
