"""`service NAME {}` blocks merged over Dovecot's built-in services and listeners.

Dovecot always has imap-login (inet_listener imap 143, imaps 993 ssl=yes),
pop3-login (pop3 110, pop3s 995), lmtp (unix_listener lmtp), managesieve-login
(sieve 4190), ... (table.SERVICE_DEFAULTS, from `doveconf -a`). A file's block
with the same service/listener name changes only the keys it sets; a port of 0
disables a listener (the daemon skips it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maa_server.config.table import SERVICE_DEFAULTS
from maa_server.config.tree import Section


def _expand_default(value: str, settings: Mapping[str, Any]) -> str:
    """Defaults like `user = $default_internal_user` stay as doveconf prints them."""
    return value


def default_services(settings: Mapping[str, Any]) -> dict[str, Section]:
    services: dict[str, Section] = {}
    for name, (values, listeners) in SERVICE_DEFAULTS.items():
        service = Section("service", name,
                          {key: _expand_default(value, settings) for key, value in values.items()})
        for kind, listener_name, listener_values in listeners:
            service.children.append(Section(kind, listener_name, {
                key: _expand_default(value, settings) for key, value in listener_values.items()}))
        services[name] = service
    return services


def _listener_defaults(kind: str) -> dict[str, str]:
    if kind == "inet_listener":
        return {"address": "", "haproxy": "no", "port": "0", "reuse_port": "no", "ssl": "no"}
    return {"group": "", "mode": "0600", "user": ""}


def build_services(configured: list[Section], settings: Mapping[str, Any]) -> dict[str, Section]:
    """The effective services: defaults with the configured blocks merged in."""
    services = default_services(settings)
    for block in configured:
        service = services.get(block.name)
        if service is None:
            service = Section("service", block.name, file=block.file, line=block.line)
            services[block.name] = service
        else:
            service.file, service.line = block.file, block.line
        service.settings.update(block.settings)
        service.assignments.update(block.assignments)
        for child in block.children:
            target = service.child(child.kind, child.name) if child.name else None
            if target is None:
                target = Section(child.kind, child.name, _listener_defaults(child.kind),
                                 file=child.file, line=child.line)
                service.children.append(target)
            else:
                target.file, target.line = child.file, child.line
            target.settings.update(child.settings)
            target.assignments.update(child.assignments)
    return services
