"""The parsed configuration tree: assignments, named/list sections, filter scopes.

A `Scope` is one filter block (`protocol imap {}`, `local 10.0.0.0/8 {}`, ... or
the global scope) with its own assignments and sections; nested filter blocks
become their own scope whose filter combines the outer ones, as Dovecot's
config-filter.c does. Identical filters written twice merge into one scope."""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FILTER_KINDS = ("local", "local_name", "remote", "protocol")  # allowed nesting order, outer to inner


@dataclass
class Assignment:
    """One `key = value` line after expansion."""

    key: str
    value: str      # what the server sees: `<file` read, `$vars` expanded
    dump: str       # what doveconf -n prints: `<path`, only self-references expanded
    file: str
    line: int
    from_file: bool = False       # value came from `<path`
    self_reference: bool = False  # value used `$key` of its own key


@dataclass
class Section:
    """A `kind [name] { ... }` block (passdb, userdb, namespace, mailbox, service,
    inet_listener, unix_listener, fifo_listener, plugin, dict)."""

    kind: str
    name: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    children: list[Section] = field(default_factory=list)
    file: str = ""
    line: int = 0
    assignments: dict[str, Assignment] = field(default_factory=dict, repr=False)

    def get(self, key: str, default: str = "") -> str:
        return self.settings.get(key, default)

    def typed(self, key: str) -> object:
        """The typed value of a section setting (bool, int, float, str), with
        Dovecot's default when unset; plain str for plugin/dict/unknown keys."""
        from maa_server.config.table import SECTION_SETTINGS
        from maa_server.config.values import parse_value

        type_name, default = SECTION_SETTINGS.get(self.kind, {}).get(key, ("str", ""))
        try:
            return parse_value(type_name, self.settings.get(key, default))
        except ValueError:
            return self.settings.get(key, default)

    def child(self, kind: str, name: str) -> Section | None:
        for child in self.children:
            if child.kind == kind and child.name == name:
                return child
        return None

    def assign(self, assignment: Assignment) -> None:
        self.assignments[assignment.key] = assignment
        self.settings[assignment.key] = assignment.value


@dataclass
class Filter:
    """The match criteria of a scope; all None = the global scope."""

    protocol: str | None = None      # `imap`, or `!imap` for "every other protocol"
    local: Network | None = None
    local_text: str = ""             # as written, for doveconf output
    remote: Network | None = None
    remote_text: str = ""
    local_name: str | None = None    # space-separated names, `*` wildcards

    @property
    def is_global(self) -> bool:
        return self.protocol is None and self.local is None and self.remote is None and self.local_name is None

    def identity(self) -> tuple[str | None, str, str, str | None]:
        return (self.protocol, str(self.local or ""), str(self.remote or ""), self.local_name)

    def specificity(self) -> tuple[int, int, int, int]:
        """Sort key, most specific largest: local_name, local bits, remote bits, protocol
        (src/config/config-filter.c config_filter_parser_cmp)."""
        return (1 if self.local_name is not None else 0,
                self.local.prefixlen if self.local is not None else -1,
                self.remote.prefixlen if self.remote is not None else -1,
                1 if self.protocol is not None else 0)

    def matches(self, protocol: str | None, local_ip: IpAddress | None,
                remote_ip: IpAddress | None, local_name: str | None) -> bool:
        if self.protocol is not None:
            if protocol is None:
                return False
            if self.protocol.startswith("!"):
                if protocol == self.protocol[1:]:
                    return False
            elif protocol != self.protocol:
                return False
        if self.local is not None and not _in_network(local_ip, self.local):
            return False
        if self.remote is not None and not _in_network(remote_ip, self.remote):
            return False
        if self.local_name is not None:
            if not local_name:
                return False
            host = local_name.lower()
            if not any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in self.local_name.split()):
                return False
        return True


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _in_network(address: IpAddress | None, network: Network) -> bool:
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None \
            and isinstance(network, ipaddress.IPv4Network):
        address = address.ipv4_mapped
    return address.version == network.version and address in network


def to_ip(value: object) -> IpAddress | None:
    """An IP address from a str/ipaddress value; None when empty or not an address."""
    if value is None or value == "":
        return None
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    text = str(value).strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


@dataclass
class Scope:
    """One filter scope with what it sets."""

    filter: Filter
    file: str = ""
    line: int = 0
    assignments: dict[str, Assignment] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    parent: Scope | None = None

    def named_section(self, kind: str, name: str) -> Section | None:
        for section in self.sections:
            if section.kind == kind and section.name == name:
                return section
        return None
