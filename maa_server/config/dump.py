"""Print a Config in doveconf's format: `-n` (non-default only) or everything.

Shape as `doveconf -n` of Dovecot 2.3.19 (src/config/doveconf.c): global
settings and sections sorted by name, values normalised (`128k` -> `128 k`),
`<file` values kept as `<path`, secrets hidden unless -P, quoted when they
have leading/trailing blanks, then the filter blocks from least to most
specific, nested filters written out as nested blocks."""

from __future__ import annotations

import re
from collections.abc import Iterable

from maa_server import __version__
from maa_server.config.model import Config
from maa_server.config.table import SECTION_SETTINGS, SETTINGS
from maa_server.config.tree import Assignment, Filter, Scope, Section
from maa_server.config.values import normalize

HIDDEN = "# hidden, use -P to show it"
ARGS_PASSWORD = re.compile(r"(password=)\S*")
# doveconf -n always lists these namespace keys (they are the namespace's "changed" fields).
ALWAYS_NAMESPACE_KEYS = ("location", "prefix")


def is_secret(key: str) -> bool:
    """doveconf hides `*_password`, `*_key` (also in plugin {}) and ssl_dh."""
    return key.endswith(("_password", "_key")) or key == "ssl_dh"


def quote(value: str) -> str:
    if value != value.strip() or (value[:1] in ('"', "'")):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def sort_key(kind: str, name: str) -> str:
    """Dovecot sorts by its internal `kind/escaped-name/` keys (settings_section_escape)."""
    escaped = (name.replace("\\", "\\\\").replace("=", "\\e").replace("/", "\\s")
               .replace(",", "\\c").replace(" ", "\\_"))
    return f"{kind}/{escaped}/"


def section_header(section: Section) -> str:
    if not section.name:
        return f"{section.kind} {{"
    name = section.name
    if any(c in name for c in " \t#{}\"'") or name == "":
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{section.kind} {name} {{"


class Dumper:
    def __init__(self, config: Config, non_default: bool, show_secrets: bool = False) -> None:
        self.config = config
        self.non_default = non_default
        self.show_secrets = show_secrets

    def render_value(self, key: str, type_name: str, assignment: Assignment | None, default: str) -> str:
        if assignment is None:
            return quote(normalize(type_name, default))
        text = assignment.dump
        if assignment.from_file:
            # doveconf prints `<path` as written; secrets are hidden even then.
            return HIDDEN if is_secret(key) and not self.show_secrets else text
        if is_secret(key) and text and not self.show_secrets:
            return HIDDEN
        if key == "args" and not self.show_secrets:
            # passdb/userdb args: `password=...` is masked, the rest shown
            text = ARGS_PASSWORD.sub(r"\1#hidden_use-P_to_show#", text)
        return quote(normalize(type_name, text) if "$" not in text else text)

    def is_default(self, type_name: str, assignment: Assignment, default: str) -> bool:
        if assignment.from_file or "$" in assignment.dump:
            return False
        return normalize(type_name, assignment.dump) == normalize(type_name, default)

    # -- blocks ---------------------------------------------------------------
    def scope_lines(self, scope: Scope, is_root: bool) -> list[str]:
        entries: list[tuple[str, list[str]]] = []
        names = sorted(SETTINGS) if (is_root and not self.non_default) else sorted(scope.assignments)
        for key in names:
            type_name, default = SETTINGS[key]
            assignment = scope.assignments.get(key)
            if self.non_default and assignment is not None and is_root \
                    and self.is_default(type_name, assignment, default):
                continue
            entries.append((key, [f"{key} = {self.render_value(key, type_name, assignment, default)}"]))
        sections = scope.sections
        if is_root and not self.non_default:
            sections = [s for s in sections if s.kind != "service"] + list(self.config.services.values())
        for section in sections:
            lines = self.section_lines(section)
            if lines:
                entries.append((sort_key(section.kind, section.name), lines))
        entries.sort(key=lambda entry: entry[0])
        return [line for _, lines in entries for line in lines]

    def section_lines(self, section: Section) -> list[str]:
        known = SECTION_SETTINGS.get(section.kind)
        entries: list[tuple[str, list[str]]] = []
        keys: Iterable[str] = section.settings
        if known is not None and not self.non_default:
            keys = set(known) | set(section.settings)
        for key in sorted(keys):
            type_name, default = known.get(key, ("str", "")) if known is not None else ("str", "")
            assignment = section.assignments.get(key)
            if assignment is None and key in section.settings and section.settings[key] != default:
                default = section.settings[key]  # a built-in service default (services.py)
            if self.non_default:
                if assignment is None:
                    continue
                forced = section.kind == "namespace" and key in ALWAYS_NAMESPACE_KEYS
                if known is not None and not forced and self.is_default(type_name, assignment, default):
                    continue
            if assignment is None and (key == "path" or key == "name" and section.kind not in ("passdb", "userdb")):
                continue
            entries.append((key, [f"  {key} = {self.render_value(key, type_name, assignment, default)}"]))
        if section.kind == "namespace" and self.non_default:
            for key in ALWAYS_NAMESPACE_KEYS:
                if key not in section.assignments:
                    entries.append((key, [f"  {key} = "]))
        for child in section.children:
            lines = self.section_lines(child)
            if lines:
                entries.append((sort_key(child.kind, child.name), ["  " + line for line in lines]))
        entries.sort(key=lambda entry: entry[0])
        body = [line for _, lines in entries for line in lines]
        if not body and (self.non_default or section.kind in ("plugin", "dict")):
            # doveconf leaves out blocks that change nothing (stock empty skeletons).
            return []
        return [section_header(section), *body, "}"]

    def filter_lines(self, scope: Scope) -> list[str]:
        body = self.scope_lines(scope, is_root=False)
        if not body:
            return []
        heads = filter_heads(scope.filter)
        lines = ["  " * depth + head + " {" for depth, head in enumerate(heads)]
        indent = "  " * len(heads)
        lines += [indent + line for line in body]
        lines += ["  " * depth + "}" for depth in reversed(range(len(heads)))]
        return lines

    def render(self) -> str:
        lines = [f"# maa-server {__version__}: {self.config.path}"]
        lines += self.scope_lines(self.config.root, is_root=True)
        for scope in sorted(self.config.scopes, key=lambda s: s.filter.specificity()):
            lines += self.filter_lines(scope)
        return "\n".join(lines) + "\n"


def filter_heads(flt: Filter) -> list[str]:
    """`local 127.0.0.1`, `protocol imap` ... outer to inner."""
    heads: list[str] = []
    if flt.local is not None:
        heads.append(f"local {_net(flt.local)}")
    if flt.local_name is not None:
        heads.append(f"local_name {flt.local_name}")  # doveconf prints the names unquoted
    if flt.remote is not None:
        heads.append(f"remote {_net(flt.remote)}")
    if flt.protocol is not None:
        heads.append(f"protocol {flt.protocol}")
    return heads


def _net(network: object) -> str:
    text = str(network)
    address, _, bits = text.partition("/")
    max_bits = "128" if ":" in address else "32"
    return address if bits == max_bits else text


def dump_config(config: Config, non_default: bool = False, show_secrets: bool = False) -> str:
    """The configuration as doveconf prints it (`non_default=True` = `doveconf -n`)."""
    return Dumper(config, non_default, show_secrets).render()
