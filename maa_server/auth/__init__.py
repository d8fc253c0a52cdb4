"""Authentication with Dovecot 2.3's semantics: passdb/userdb chains,
drivers, password schemes, SASL. The protocol layers use only
`build_authenticator(cfg)` and the interface in `maa_server.auth.interface`."""

from __future__ import annotations

from typing import Any

from maa_server.auth.authenticator import (
    PRIVATE_MECHANISMS,
    SUPPORTED_MECHANISMS,
    AuthLookupError,
    MaaAuthenticator,
)
from maa_server.auth.engine import AuthEngine
from maa_server.auth.interface import Authenticator
from maa_server.auth.settings import (
    AuthConfigError,
    AuthSettings,
    build_passdbs,
    build_userdbs,
)
from maa_server.logs import get_log


def build_authenticator(cfg: Any) -> Authenticator:
    """From a `maa_server.config.Config`. Raises AuthConfigError for blocks
    Dovecot would refuse (unknown driver, bad args, pass=yes last, ...)."""
    settings = AuthSettings.from_config(cfg)
    unsupported = [m for m in settings.mechanisms
                   if m not in SUPPORTED_MECHANISMS and m not in PRIVATE_MECHANISMS]
    if unsupported:
        get_log("auth").warning(f"auth_mechanisms: {' '.join(unsupported)} not supported by "
                                "maa-server, not offered to clients")
    passdbs, masters = build_passdbs(list(getattr(cfg, "passdbs", []) or []))
    userdbs = build_userdbs(list(getattr(cfg, "userdbs", []) or []))
    return MaaAuthenticator(AuthEngine(settings, passdbs, masters, userdbs), cfg)


__all__ = ["AuthConfigError", "AuthLookupError", "Authenticator", "MaaAuthenticator", "build_authenticator"]
