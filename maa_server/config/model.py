"""Config and Settings: typed, filter-aware access to a parsed configuration.

`Config.settings(protocol=, local_ip=, remote_ip=, local_name=)` applies every
matching filter, least specific first, so the most specific one that sets a
name wins (src/config/config-filter.c ordering: local_name, local network,
remote network, protocol, global)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from maa_server.config.conflicts import find_conflicts
from maa_server.config.parser import ParseResult
from maa_server.config.services import build_services
from maa_server.config.table import SETTINGS
from maa_server.config.tree import Assignment, Scope, Section, to_ip
from maa_server.config.values import Value, parse_value


def _defaults() -> dict[str, Value]:
    out: dict[str, Value] = {}
    for name, (type_name, default) in SETTINGS.items():
        try:
            out[name] = parse_value(type_name, default)
        except ValueError:  # a default doveconf prints that its own parser refuses
            out[name] = default
    return out


DEFAULTS: dict[str, Value] = _defaults()


class Settings(Mapping[str, Value]):
    """Read-only name -> typed value, with the filters of one connection applied."""

    def __init__(self, values: dict[str, Value], origins: dict[str, Assignment]) -> None:
        self._values = values
        self._origins = origins

    def __getitem__(self, name: str) -> Value:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def origin(self, name: str) -> Assignment | None:
        """Where the effective value was set (None = Dovecot's default)."""
        return self._origins.get(name)

    def __repr__(self) -> str:
        changed = {name: self._values[name] for name in self._origins}
        return f"Settings({changed!r})"


class Config:
    """A loaded configuration (see the contract in the module docstring of __init__)."""

    def __init__(self, result: ParseResult, path: str) -> None:
        self.path = path
        self.files = list(result.files)
        self.warnings: list[str] = list(result.warnings)
        self.root: Scope = result.root
        self.scopes: list[Scope] = list(result.scopes)
        self._cache: dict[tuple[int, ...], Settings] = {}
        # Dovecot fails the lookup of a connection that hits a conflict; we warn
        # at load and let the most specific filter win.
        self.warnings += [f"{message} (the most specific filter's value is used)"
                          for message in find_conflicts(self.scopes)]
        self.services: dict[str, Section] = build_services(self._global_sections("service"),
                                                           self.settings())

    # -- typed settings ---------------------------------------------------------
    def settings(self, protocol: str | None = None, local_ip: Any = None, remote_ip: Any = None,
                 local_name: str | None = None) -> Settings:
        scopes = self.matching_scopes(protocol, local_ip, remote_ip, local_name)
        # Cached per set of matching filters (not per address): few distinct sets exist.
        key = tuple(id(scope) for scope in scopes)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        values = dict(DEFAULTS)
        origins: dict[str, Assignment] = {}
        for scope in scopes:
            for name, assignment in scope.assignments.items():
                type_name = SETTINGS[name][0]
                try:
                    values[name] = parse_value(type_name, assignment.value)
                except ValueError:  # `<file` not read (doveconf -n mode): keep the raw text
                    values[name] = assignment.value
                origins[name] = assignment
        settings = Settings(values, origins)
        self._cache[key] = settings
        return settings

    def get(self, name: str, protocol: str | None = None, local_ip: Any = None,
            remote_ip: Any = None, local_name: str | None = None) -> Value | None:
        """The typed effective value (Dovecot's default when unset); None for a
        name Dovecot does not know."""
        return self.settings(protocol, local_ip, remote_ip, local_name).get(name)

    def matching_scopes(self, protocol: str | None = None, local_ip: Any = None, remote_ip: Any = None,
                        local_name: str | None = None) -> list[Scope]:
        """Global scope first, then matching filters from least to most specific
        (a later scope overrides an earlier one)."""
        local, remote = to_ip(local_ip), to_ip(remote_ip)
        matching = [(index, scope) for index, scope in enumerate(self.scopes)
                    if scope.filter.matches(protocol or None, local, remote, local_name or None)]
        # Of two equally specific filters the one that comes first in the file wins
        # (observed: `protocol imap {}` then `protocol !pop3 {}` -> imap's value for imap),
        # so it is applied last.
        matching.sort(key=lambda item: (item[1].filter.specificity(), -item[0]))
        return [self.root, *(scope for _, scope in matching)]

    # -- sections -----------------------------------------------------------------
    def _global_sections(self, kind: str) -> list[Section]:
        return [section for section in self.root.sections if section.kind == kind]

    @property
    def passdbs(self) -> list[Section]:
        return self._global_sections("passdb")

    @property
    def userdbs(self) -> list[Section]:
        return self._global_sections("userdb")

    @property
    def namespaces(self) -> list[Section]:
        return self._global_sections("namespace")

    def passdbs_for(self, protocol: str | None) -> list[Section]:
        """passdb blocks including those inside `protocol NAME {}` filters."""
        return [s for scope in self.matching_scopes(protocol) for s in scope.sections if s.kind == "passdb"]

    def userdbs_for(self, protocol: str | None) -> list[Section]:
        return [s for scope in self.matching_scopes(protocol) for s in scope.sections if s.kind == "userdb"]

    def plugin(self, protocol: str | None = None) -> dict[str, str]:
        """plugin {} settings, with `protocol NAME { plugin {} }` applied on top."""
        out: dict[str, str] = {}
        for scope in self.matching_scopes(protocol):
            for section in scope.sections:
                if section.kind == "plugin":
                    out.update(section.settings)
        return out

    @property
    def dicts(self) -> dict[str, str]:
        """dict {} entries: name -> URI."""
        out: dict[str, str] = {}
        for section in self._global_sections("dict"):
            out.update(section.settings)
        return out

    @property
    def local_names(self) -> dict[str, Settings]:
        """Each host name of a `local_name` filter -> its settings (SNI lookups)."""
        out: dict[str, Settings] = {}
        for scope in self.scopes:
            if scope.filter.local_name is None:
                continue
            for host in scope.filter.local_name.split():
                out.setdefault(host, self.settings(local_name=host))
        return out
