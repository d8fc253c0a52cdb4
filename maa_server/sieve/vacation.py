"""Whether a vacation reply may go out (RFC 5230 4.5-4.6 and Pigeonhole's
extra checks), with Pigeonhole's log wording. No I/O."""

from __future__ import annotations

from maa_server.sieve.message import SieveMessage

# RFC 5230 4.5 / Pigeonhole ext-vacation-common: never answer these senders.
_SYSTEM_LOCALPARTS = ("mailer-daemon", "listserv", "majordomo")
_LIST_HEADERS = ("list-id", "list-owner", "list-subscribe", "list-post", "list-unsubscribe",
                 "list-help", "list-archive")


def _strip_detail(address: str, delimiter: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at:
        return address.lower()
    for ch in delimiter:
        local = local.split(ch, 1)[0]
    return f"{local}@{domain}".lower()


def vacation_skip_reason(message: SieveMessage, sender: str, recipient: str, addresses: tuple[str, ...],
                   duplicate: bool, delimiter: str, dont_check_recipient: bool = False) -> str:
    """The reason not to answer, as Pigeonhole logs it, in Pigeonhole's order
    (ext-vacation.c act_vacation_commit()); "" to answer."""
    if not sender:
        return "discarded vacation reply to <>"
    if duplicate:
        return f"discarded duplicate vacation response to <{sender}>"
    if any(message.headers(h) for h in _LIST_HEADERS):
        return f"discarding vacation response to mailinglist recipient <{sender}>"
    auto = (message.headers("auto-submitted") or ["no"])[0].strip().lower()
    if auto != "no":
        return f"discarding vacation response to auto-submitted message from <{sender}>"
    precedence = (message.headers("precedence") or [""])[0].strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"discarding vacation response to precedence={precedence} message from <{sender}>"
    local = sender.rpartition("@")[0].lower() if "@" in sender else sender.lower()
    if local in _SYSTEM_LOCALPARTS or local.startswith("owner-") or local.endswith("-request"):
        return f"not sending vacation response to system address <{sender}>"
    ours = {_strip_detail(a, delimiter) for a in (recipient, *addresses) if a}
    seen = {_strip_detail(a, delimiter) for h in ("to", "cc", "bcc", "resent-to", "resent-cc",
                                                  "resent-bcc") for a in message.addresses(h)}
    if not dont_check_recipient and not ours & seen:
        extra = "" if addresses else ", and no additional `:addresses' are specified"
        return ("discarding vacation response for implicitly delivered message; no known (envelope) "
                f"recipient address found in message headers (recipient=<{recipient}>{extra})")
    return ""
