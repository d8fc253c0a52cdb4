"""Pigeonhole's settings as delivery-time Sieve uses them: the `plugin {}`
keys (sieve, sieve_before/after/default, sieve_extensions, sieve_vacation_*,
sieve_spamtest_*/sieve_virustest_* ...) plus the sending settings
(sendmail_path, submission_host, postmaster_address, hostname). No I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from maa_server.sieve.signatures import EXTENSIONS, OPTIONAL_EXTENSIONS
from maa_server.sieve.spamtest import StatusTest


def _yes(value: str) -> bool:
    return value.strip().lower() in ("yes", "y", "1", "true", "on")


@dataclass
class SieveConfig:
    """The `plugin {}` settings Pigeonhole reads (sieve_*) plus the sending ones."""

    location: str = "file:~/sieve;active=~/.dovecot.sieve"
    legacy_dir: str = ""  # sieve_dir, for the old `sieve = ~/.dovecot.sieve` form
    user_log: str = ""  # sieve_user_log; "" = next to the active script
    default: str = ""
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    global_dir: str = ""
    max_actions: int = 32
    max_redirects: int = 4
    extensions: frozenset[str] = EXTENSIONS
    vacation_min_period: int = 86400
    vacation_max_period: int = 60 * 86400
    vacation_default_period: int = 7 * 86400
    vacation_dont_check_recipient: bool = False  # sieve_vacation_dont_check_recipient
    vacation_send_from_recipient: bool = False  # sieve_vacation_send_from_recipient
    sendmail_path: str = "/usr/sbin/sendmail"
    submission_host: str = ""
    postmaster_address: str = ""
    redirect_envelope_from: str = "sender"  # sieve_redirect_envelope_from
    redirect_duplicate_period: int = 12 * 3600  # sieve_redirect_duplicate_period
    hostname: str = ""
    recipient_delimiter: str = "+"
    status_tests: dict[str, StatusTest] = field(default_factory=dict)  # spamtest / virustest

    @classmethod
    def from_plugin(cls, plugin: dict[str, str], settings_get: Callable[[str], object]) -> SieveConfig:
        from maa_server.config.values import parse_time

        def numbered(base: str) -> list[str]:
            out = [plugin[base]] if plugin.get(base) else []
            n = 2
            while plugin.get(f"{base}{n}"):
                out.append(plugin[f"{base}{n}"])
                n += 1
            return out

        def seconds(name: str, default: int) -> int:
            try:
                return int(parse_time(plugin[name])) if plugin.get(name) else default
            except ValueError:
                return default

        def number(name: str, default: int) -> int:
            try:
                return int(plugin.get(name) or default)
            except ValueError:
                return default

        exts = set(EXTENSIONS)
        words = plugin.get("sieve_extensions", "").split()
        if words and not all(w[:1] in "+-" for w in words):
            exts = set()  # a plain list replaces the default set (Pigeonhole)
        for word in words:
            name = word.lstrip("+-")
            if word.startswith("-"):
                exts.discard(name)
            elif name in EXTENSIONS | OPTIONAL_EXTENSIONS:
                exts.add(name)
        return cls(
            location=plugin.get("sieve", cls.location),
            legacy_dir=plugin.get("sieve_dir", ""),
            user_log=plugin.get("sieve_user_log", ""),
            default=plugin.get("sieve_default", ""),
            before=numbered("sieve_before"),
            after=numbered("sieve_after"),
            global_dir=plugin.get("sieve_global", plugin.get("sieve_global_dir", "")),
            max_actions=number("sieve_max_actions", 32),
            max_redirects=number("sieve_max_redirects", 4),
            extensions=frozenset(exts),
            vacation_min_period=seconds("sieve_vacation_min_period", 86400),
            vacation_max_period=seconds("sieve_vacation_max_period", 60 * 86400),
            vacation_default_period=seconds("sieve_vacation_default_period", 7 * 86400),
            vacation_dont_check_recipient=_yes(plugin.get("sieve_vacation_dont_check_recipient", "")),
            vacation_send_from_recipient=_yes(plugin.get("sieve_vacation_send_from_recipient", "")),
            sendmail_path=str(settings_get("sendmail_path") or "/usr/sbin/sendmail"),
            submission_host=str(settings_get("submission_host") or ""),
            postmaster_address=str(settings_get("postmaster_address") or ""),
            redirect_envelope_from=plugin.get("sieve_redirect_envelope_from", "sender").strip() or "sender",
            redirect_duplicate_period=seconds("sieve_redirect_duplicate_period", 12 * 3600),
            hostname=str(settings_get("hostname") or ""),
            recipient_delimiter=str(settings_get("recipient_delimiter") or "+"),
            status_tests={kind: test for kind in ("spamtest", "virustest")
                          if (test := StatusTest.from_plugin(plugin, kind)) is not None},
        )

    def postmaster(self, recipient: str) -> str:
        """postmaster_address; its default `postmaster@%{if;%d;ne;;%d;%{hostname}}`
        is the recipient's domain, else the host name."""
        value = self.postmaster_address
        if value and "%" not in value:
            return value
        domain = recipient.rpartition("@")[2] if "@" in recipient else ""
        return f"postmaster@{domain or self.host()}"

    def redirect_sender(self, mail_from: str, recipient: str, user: str) -> str:
        """The envelope sender of a redirected message (sieve_redirect_envelope_from:
        sender, recipient, orig_recipient, user_email, postmaster or <address>)."""
        choice = self.redirect_envelope_from
        if choice.startswith("<") and choice.endswith(">"):
            return choice[1:-1]
        if choice in ("recipient", "orig_recipient"):
            return recipient
        if choice == "user_email":
            return user if "@" in user else recipient
        if choice == "postmaster":
            return self.postmaster(recipient)
        return mail_from

    def host(self) -> str:
        import socket

        return self.hostname or socket.gethostname()
