"""The LMTP/LDA settings a delivery runs with (spec 2.8), read with
`protocol lmtp` (or `protocol lda` for maa-lda) filters applied."""

from __future__ import annotations

import socket
from dataclasses import dataclass, fields
from typing import Any

_TRUE = {"yes", "y", "1", "true", "on"}


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    recipient_delimiter: str = "+"
    lmtp_save_to_detail_mailbox: bool = False
    lmtp_hdr_delivery_address: str = "final"
    lmtp_add_received_header: bool = True
    lmtp_user_concurrency_limit: int = 0
    lda_mailbox_autocreate: bool = False
    lda_mailbox_autosubscribe: bool = False
    quota_full_tempfail: bool = False
    login_greeting: str = "Dovecot ready."
    hostname: str = ""

    @classmethod
    def load(cls, config: Any, protocol: str = "lmtp", local_ip: str = "",
             remote_ip: str = "") -> DeliverySettings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if config is None:
                break
            try:
                value = config.get(f.name, protocol=protocol, local_ip=local_ip or None,
                                   remote_ip=remote_ip or None)
            except (KeyError, LookupError):
                continue
            if value is None:
                continue
            if f.type in ("bool", bool):
                value = value if isinstance(value, bool) else str(value).lower() in _TRUE
            elif f.type in ("int", int):
                value = int(value)
            else:
                value = str(value)
            values[f.name] = value
        return cls(**values)

    @property
    def my_hostname(self) -> str:
        """The `hostname` setting, else the system host name (Dovecot's
        my_hostname, as in the banner `220 vm Dovecot (Debian) ready.`)."""
        return self.hostname or socket.gethostname()
