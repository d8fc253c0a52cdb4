"""The POP3 settings one session runs with (spec 2.7).

Read once at login from the configuration with `protocol pop3` and the
connection's local/remote filters applied, then overridden by userdb extra
fields of the same name (Dovecot applies `userdb_pop3_save_uidl=yes` and the
like to the mail process; src/lib-storage/mail-storage-service.c).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from maa_server.protocols.pop3.uidl import DEFAULT_UIDL_FORMAT

_TRUE = {"yes", "y", "1", "true", "on"}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


@dataclass(frozen=True, slots=True)
class Pop3Settings:
    pop3_uidl_format: str = DEFAULT_UIDL_FORMAT
    pop3_save_uidl: bool = False
    pop3_reuse_xuidl: bool = False
    pop3_uidl_duplicates: str = "allow"
    pop3_no_flag_updates: bool = False
    pop3_lock_session: bool = False
    pop3_enable_last: bool = False
    pop3_deleted_flag: str = ""
    pop3_delete_type: str = "default"
    pop3_logout_format: str = "top=%t/%p, retr=%r/%b, del=%d/%m, size=%s"
    pop3_client_workarounds: str = ""
    mail_max_userip_connections: int = 10

    @classmethod
    def load(cls, config: Any, local_ip: str = "", remote_ip: str = "",
             userdb_fields: dict[str, str] | None = None, local_name: str = "") -> Pop3Settings:
        values: dict[str, Any] = {}
        extra = userdb_fields or {}
        for f in fields(cls):
            value: Any = None
            if f.name in extra:
                value = extra[f.name]
            elif config is not None:
                try:
                    value = config.get(f.name, protocol="pop3", local_ip=local_ip or None,
                                       remote_ip=remote_ip or None, local_name=local_name or None)
                except (KeyError, LookupError):
                    value = None
            if value is None:
                continue
            if f.type in ("bool", bool):
                value = _as_bool(value)
            elif f.type in ("int", int):
                value = int(value)
            else:
                value = str(value)
            values[f.name] = value
        return cls(**values)

    @property
    def workarounds(self) -> set[str]:
        return set(self.pop3_client_workarounds.split())

    @property
    def deletes_by_flag(self) -> bool:
        """pop3_delete_type: `default` means flag when pop3_deleted_flag is set."""
        if self.pop3_delete_type == "flag":
            return bool(self.pop3_deleted_flag)
        if self.pop3_delete_type == "expunge":
            return False
        return bool(self.pop3_deleted_flag)
