"""Login name normalisation, in Dovecot's order (spec 3.4;
src/auth/auth-request.c auth_request_fix_username())."""

from __future__ import annotations

from dataclasses import dataclass

from maa_server.auth.settings import AuthSettings
from maa_server.auth.varexpand import ExpansionError, expand, user_parts


class UsernameError(ValueError):
    """The name is refused before any passdb is asked (logged with auth_verbose)."""


@dataclass(frozen=True, slots=True)
class LoginName:
    user: str  # the user to log in as
    master_user: str = ""  # the authenticating master user, if any
    original: str = ""


def fix_username(name: str, settings: AuthSettings) -> str:
    if settings.default_realm and "@" not in name:
        name = f"{name}@{settings.default_realm}"
    if settings.username_translation:
        name = "".join(settings.username_translation.get(ch, ch) for ch in name)
    if settings.username_chars:
        allowed = settings.username_chars
        for ch in name:
            if ch not in allowed:
                raise UsernameError("Username character disallowed by auth_username_chars: "
                                    f"0x{ord(ch):02x} (username: {name})")
    try:
        name = expand(settings.username_format, user_parts(name)) if settings.username_format else name
    except ExpansionError as exc:
        raise UsernameError(f"auth_username_format: {exc}") from exc
    if not name:
        raise UsernameError("Empty username")
    return name


def normalise_login(name: str, settings: AuthSettings, authzid: str = "") -> LoginName:
    """`target*master` (with auth_master_user_separator) or a SASL authzid
    different from the authcid make a master login."""
    original = name
    master = ""
    if authzid and authzid != name:
        master, name = name, authzid
    elif settings.master_user_separator and settings.master_user_separator in name:
        name, _, master = name.partition(settings.master_user_separator)
    if not name:
        raise UsernameError("Empty username")
    user = fix_username(name, settings)
    return LoginName(user, fix_username(master, settings) if master else "", original)
