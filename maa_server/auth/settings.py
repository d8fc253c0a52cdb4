"""Auth settings and passdb/userdb blocks read from the configuration.

Reads through the config contract: `cfg.get(name)` for typed global values,
`cfg.passdbs` / `cfg.userdbs` for the blocks (raw strings). Invalid blocks
raise `AuthConfigError` with Dovecot's message, as Dovecot refuses to start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from maa_server.auth.chain import DbRules, Rule, Skip, parse_rule, parse_skip
from maa_server.auth.drivers import (
    DriverError,
    PassdbDriver,
    UserdbDriver,
    make_passdb,
    make_userdb,
)
from maa_server.auth.fields import parse_fields, split_list

DEFAULT_USERNAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@"

# Dovecot's defaults, used when the config object does not know a name.
_DEFAULTS: dict[str, Any] = {
    "auth_mechanisms": "plain",
    "disable_plaintext_auth": True,
    "login_trusted_networks": "",
    "auth_username_format": "%Lu",
    "auth_default_realm": "",
    "auth_realms": "",
    "auth_username_chars": DEFAULT_USERNAME_CHARS,
    "auth_username_translation": "",
    "auth_master_user_separator": "",
    "auth_verbose": False,
    "auth_verbose_passwords": "no",
    "auth_debug": False,
    "auth_debug_passwords": False,
    "auth_failure_delay": 2.0,
    "auth_ssl_require_client_cert": False,
    "auth_ssl_username_from_cert": False,
    "ssl_verify_client_cert": False,
    "auth_anonymous_username": "anonymous",
    "first_valid_uid": 500,
    "last_valid_uid": 0,
    "first_valid_gid": 1,
    "last_valid_gid": 0,
}


class AuthConfigError(Exception):
    """A passdb/userdb block Dovecot would refuse at startup."""


def _get(cfg: Any, name: str) -> Any:
    try:
        value = cfg.get(name)
    except (KeyError, AttributeError, LookupError):
        return _DEFAULTS[name]
    except Exception as exc:  # the config's own "unknown setting" error
        if type(exc).__name__ == "ConfigError":
            return _DEFAULTS[name]
        raise
    return _DEFAULTS[name] if value is None else value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "y", "1", "true")


def _seconds(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().split()
    if not text:
        return 0.0
    number = float(text[0])
    unit = text[1] if len(text) > 1 else "s"
    if unit.startswith("m") and not unit.startswith("ms"):
        return number * 60
    if unit.startswith("ms"):
        return number / 1000
    if unit.startswith("h"):
        return number * 3600
    return number


@dataclass(slots=True)
class AuthSettings:
    mechanisms: list[str] = field(default_factory=lambda: ["PLAIN"])
    disable_plaintext_auth: bool = True
    login_trusted_networks: str = ""
    username_format: str = "%Lu"
    default_realm: str = ""
    realms: list[str] = field(default_factory=list)
    username_chars: str = DEFAULT_USERNAME_CHARS
    username_translation: dict[str, str] = field(default_factory=dict)
    master_user_separator: str = ""
    verbose: bool = False
    verbose_passwords: str = "no"
    debug: bool = False
    failure_delay: float = 2.0
    ssl_username_from_cert: bool = False
    ssl_verify_client_cert: bool = False
    ssl_require_client_cert: bool = False
    anonymous_username: str = "anonymous"
    first_valid_uid: int = 500
    last_valid_uid: int = 0
    first_valid_gid: int = 1
    last_valid_gid: int = 0

    @classmethod
    def from_config(cls, cfg: Any) -> AuthSettings:
        translation_text = str(_get(cfg, "auth_username_translation"))
        translation = {translation_text[i]: translation_text[i + 1]
                       for i in range(0, len(translation_text) - 1, 2)}
        return cls(
            mechanisms=[m.upper() for m in split_list(str(_get(cfg, "auth_mechanisms")))],
            disable_plaintext_auth=_bool(_get(cfg, "disable_plaintext_auth")),
            login_trusted_networks=str(_get(cfg, "login_trusted_networks")),
            username_format=str(_get(cfg, "auth_username_format")),
            default_realm=str(_get(cfg, "auth_default_realm")),
            realms=split_list(str(_get(cfg, "auth_realms"))),
            username_chars=str(_get(cfg, "auth_username_chars")),
            username_translation=translation,
            master_user_separator=str(_get(cfg, "auth_master_user_separator")),
            verbose=_bool(_get(cfg, "auth_verbose")),
            verbose_passwords=str(_get(cfg, "auth_verbose_passwords")),
            debug=_bool(_get(cfg, "auth_debug")) or _bool(_get(cfg, "auth_debug_passwords")),
            failure_delay=_seconds(_get(cfg, "auth_failure_delay")),
            ssl_username_from_cert=_bool(_get(cfg, "auth_ssl_username_from_cert")),
            ssl_verify_client_cert=_bool(_get(cfg, "ssl_verify_client_cert")),
            ssl_require_client_cert=_bool(_get(cfg, "auth_ssl_require_client_cert")),
            anonymous_username=str(_get(cfg, "auth_anonymous_username")),
            first_valid_uid=int(_get(cfg, "first_valid_uid")),
            last_valid_uid=int(_get(cfg, "last_valid_uid")),
            first_valid_gid=int(_get(cfg, "first_valid_gid")),
            last_valid_gid=int(_get(cfg, "last_valid_gid")),
        )


@dataclass(slots=True)
class PassdbConfig:
    driver: PassdbDriver
    name: str
    rules: DbRules
    master: bool = False
    mechanisms: str = ""
    username_filter: str = ""
    default_fields: list[tuple[str, str]] = field(default_factory=list)
    override_fields: list[tuple[str, str]] = field(default_factory=list)
    verbose: bool | None = None  # per-passdb auth_verbose override


@dataclass(slots=True)
class UserdbConfig:
    driver: UserdbDriver
    name: str
    rules: DbRules
    default_fields: list[tuple[str, str]] = field(default_factory=list)
    override_fields: list[tuple[str, str]] = field(default_factory=list)


def _verbose(value: str) -> bool | None:
    text = value.strip().lower()
    if text in ("", "default"):
        return None
    return text in ("yes", "y", "1", "true")


def build_passdbs(sections: list[Any]) -> tuple[list[PassdbConfig], list[PassdbConfig]]:
    """(normal passdbs, master passdbs), with Dovecot's startup checks."""
    normal: list[PassdbConfig] = []
    masters: list[PassdbConfig] = []
    for section in sections:
        s = section.settings
        driver_name = s.get("driver", "").strip()
        if not driver_name:
            raise AuthConfigError("passdb is missing driver")
        try:
            driver = make_passdb(driver_name, s.get("args", ""))
            deny = _bool(s.get("deny", "no"))
            master = _bool(s.get("master", "no"))
            success = parse_rule(s.get("result_success", ""), Rule.RETURN_OK)
            if _bool(s.get("pass", "no")):
                success = Rule.CONTINUE
            rules = DbRules(
                deny=deny,
                skip=parse_skip(s.get("skip", "")),
                result_success=success,
                result_failure=parse_rule(s.get("result_failure", ""), Rule.CONTINUE),
                result_internalfail=parse_rule(s.get("result_internalfail", ""), Rule.CONTINUE),
            )
        except (DriverError, ValueError) as exc:
            raise AuthConfigError(str(exc)) from exc
        if master and deny:
            raise AuthConfigError("Master passdb can't have deny=yes")
        entry = PassdbConfig(
            driver=driver, name=s.get("name", "") or driver.name, rules=rules, master=master,
            mechanisms=s.get("mechanisms", ""), username_filter=s.get("username_filter", ""),
            default_fields=parse_fields(s.get("default_fields", "")),
            override_fields=parse_fields(s.get("override_fields", "")),
            verbose=_verbose(s.get("auth_verbose", "")))
        (masters if master else normal).append(entry)
    # A first passdb with skip=unauthenticated can never run: dropped silently.
    while normal and normal[0].rules.skip is Skip.UNAUTHENTICATED:
        normal.pop(0)
    normal_sections = [sec for sec in sections if not _bool(sec.settings.get("master", "no"))]
    if normal_sections and _bool(normal_sections[-1].settings.get("pass", "no")):
        raise AuthConfigError("Last passdb can't have pass=yes")
    if masters and not normal and any(m.rules.result_success is Rule.CONTINUE for m in masters):
        raise AuthConfigError("Master passdb can't have pass=yes if there are no passdbs")
    return normal, masters


def build_userdbs(sections: list[Any]) -> list[UserdbConfig]:
    out: list[UserdbConfig] = []
    for section in sections:
        s = section.settings
        driver_name = s.get("driver", "").strip()
        if not driver_name:
            raise AuthConfigError("userdb is missing driver")
        try:
            driver = make_userdb(driver_name, s.get("args", ""))
            rules = DbRules(
                skip=parse_skip(s.get("skip", ""), userdb=True),
                result_success=parse_rule(s.get("result_success", ""), Rule.RETURN_OK),
                result_failure=parse_rule(s.get("result_failure", ""), Rule.CONTINUE),
                result_internalfail=parse_rule(s.get("result_internalfail", ""), Rule.CONTINUE),
            )
        except (DriverError, ValueError) as exc:
            raise AuthConfigError(str(exc)) from exc
        out.append(UserdbConfig(driver, s.get("name", "") or driver.name, rules,
                                parse_fields(s.get("default_fields", "")),
                                parse_fields(s.get("override_fields", ""))))
    return out
