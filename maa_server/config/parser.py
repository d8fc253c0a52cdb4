"""Build the configuration tree from Dovecot-format text: includes, sections,
filters, `<file` values, `$variables`, validation against the settings table.

Follows src/config/config-parser.c of Dovecot 2.3. File access goes through a
`Loader`, so tests (and `parse_config_text`) can feed text without a disk."""

from __future__ import annotations

import difflib
import glob
import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from maa_server.config.errors import ConfigError
from maa_server.config.implemented import IMPLEMENTED
from maa_server.config.lexer import Line, LineKind, LineReader
from maa_server.config.table import SECTION_SETTINGS, SETTINGS
from maa_server.config.tree import (
    FILTER_KINDS,
    Assignment,
    Filter,
    Network,
    Scope,
    Section,
)
from maa_server.config.values import parse_value

SCOPE_SECTION_KINDS = ("service", "namespace", "passdb", "userdb", "plugin", "dict")
CHILD_SECTION_KINDS = {"namespace": ("mailbox",),
                       "service": ("inet_listener", "unix_listener", "fifo_listener")}
FREE_FORM_KINDS = ("plugin", "dict")           # any key accepted
LIST_KINDS = ("passdb", "userdb")              # every block is a new entry
SINGLETON_KINDS = ("plugin", "dict")           # one per scope, blocks merge
SPECIAL_USE = {"\\all", "\\archive", "\\drafts", "\\flagged", "\\important", "\\junk", "\\sent",
               "\\trash"}
# Settings of the auth process (src/auth/auth-settings.c) besides `auth_*`; none of
# them may be set inside local/remote (verified against doveconf 2.3.19).
AUTH_EXTRA_SETTINGS = {"base_dir", "first_valid_gid", "first_valid_uid", "last_valid_gid", "last_valid_uid",
                       "ssl_client_ca_dir", "ssl_client_ca_file", "verbose_proctitle"}
SERVICE_TYPES = {"", "log", "config", "anvil", "login", "startup", "worker"}


class Loader(Protocol):
    """File access used by the parser."""

    def read_text(self, path: str) -> str: ...

    def glob(self, pattern: str) -> list[str]: ...


class FileSystemLoader:
    """The real file system."""

    def read_text(self, path: str) -> str:
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            # Dovecot treats the file as bytes. A legacy (Latin-1) file is read
            # byte for byte so that values stay printable and encodable.
            return data.decode("latin-1")

    def glob(self, pattern: str) -> list[str]:
        return sorted({match for expanded in expand_braces(pattern) for match in glob.glob(expanded)})


def expand_braces(pattern: str) -> list[str]:
    """`conf.d/{a,b}.conf` -> [`conf.d/a.conf`, `conf.d/b.conf`] (GLOB_BRACE)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    out: list[str] = []
    for choice in match.group(1).split(","):
        out.extend(expand_braces(pattern[:match.start()] + choice + pattern[match.end():]))
    return out


@dataclass
class Frame:
    """One open block on the parser's stack."""

    scope: Scope
    section: Section | None
    file: str
    line: int


@dataclass
class ParseResult:
    root: Scope
    scopes: list[Scope]     # non-global filter scopes, in order of first appearance
    warnings: list[str]
    files: list[str]


def did_you_mean(word: str, candidates: object) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)  # type: ignore[call-overload]
    return f" (did you mean {close[0]}?)" if close else ""


class Parser:
    """Parses one configuration (a main file and everything it includes)."""

    def __init__(self, loader: Loader | None = None, read_files: bool = True,
                 environ: Mapping[str, str] | None = None) -> None:
        self.loader = loader or FileSystemLoader()
        self.read_files = read_files
        self.environ = os.environ if environ is None else environ
        self.root = Scope(Filter())
        self.scopes: list[Scope] = []
        self.warnings: list[str] = []
        self.files: list[str] = []
        self._warned: set[str] = set()
        self._stack: list[Frame] = []
        self._include_stack: list[str] = []

    # -- entry points ---------------------------------------------------------------
    def parse_file(self, path: str) -> ParseResult:
        try:
            text = self.loader.read_text(path)
        except OSError as exc:
            raise ConfigError(f"open({path}) failed: {exc.strerror or exc}") from exc
        return self.parse_text(text, path)

    def parse_text(self, text: str, path: str) -> ParseResult:
        self._stack = [Frame(self.root, None, path, 0)]
        self._parse_one(text, path)
        if len(self._stack) > 1:
            frame = self._stack[-1]
            raise ConfigError(f"Missing '}}' (section started at {frame.file}:{frame.line})", path)
        return ParseResult(self.root, self.scopes, self.warnings, self.files)

    # -- lines ----------------------------------------------------------------------------
    def _parse_one(self, text: str, path: str) -> None:
        self.files.append(path)
        self._include_stack.append(path)
        reader = LineReader()
        lineno = 0
        # Lines end at LF only (a CR before it is dropped by the lexer), as i_stream_next_line().
        for lineno, raw in enumerate(text.split("\n"), start=1):
            line = reader.feed(raw, lineno)
            if line is not None:
                self._apply(line, path)
        last = reader.finish(lineno)
        if last is not None:
            self._apply(last, path)
        self._include_stack.pop()

    def _apply(self, line: Line, path: str) -> None:
        for warning in line.warnings:
            self.warnings.append(f"Configuration file {path} {warning}")
        try:
            if line.kind is LineKind.ERROR:
                raise ValueError(line.value)
            if line.kind in (LineKind.INCLUDE, LineKind.INCLUDE_TRY):
                self._include(line, path)
            elif line.kind is LineKind.SECTION_END:
                if len(self._stack) == 1:
                    raise ValueError("Unexpected '}'")
                self._stack.pop()
            elif line.kind is LineKind.SECTION_BEGIN:
                self._begin_section(line, path)
            else:
                self._assign(line, path)
        except ValueError as exc:
            raise ConfigError(str(exc), path, line.lineno) from None

    def _include(self, line: Line, path: str) -> None:
        pattern = line.value
        if not pattern:
            raise ValueError("!include requires a file name")
        if not os.path.isabs(pattern):
            pattern = os.path.join(os.path.dirname(path), pattern)
        matches = self.loader.glob(pattern)
        if not matches:
            if line.kind is LineKind.INCLUDE:
                raise ValueError("No matches")
            return
        for included in matches:
            if included in self._include_stack:
                raise ValueError(f"Recursive include file: {included}")
            try:
                text = self.loader.read_text(included)
            except OSError as exc:
                if line.kind is LineKind.INCLUDE_TRY:
                    continue
                raise ValueError(f"Couldn't open include file {included}: {exc.strerror or exc}") from None
            self._parse_one(text, included)

    # -- sections -----------------------------------------------------------------------
    def _begin_section(self, line: Line, path: str) -> None:
        kind, name = line.key, line.value
        top = self._stack[-1]
        if kind in FILTER_KINDS:
            if top.section is not None:
                raise ValueError("Section not allowed here")
            scope = self._filter_scope(top.scope, kind, name, path, line.lineno)
            self._stack.append(Frame(scope, None, path, line.lineno))
            return
        if top.section is None:
            if kind not in SCOPE_SECTION_KINDS:
                allowed = SCOPE_SECTION_KINDS + FILTER_KINDS
                raise ValueError(f"Unknown section: {kind}{did_you_mean(kind, allowed)}")
            flt = top.scope.filter
            if kind in LIST_KINDS and (flt.local is not None or flt.remote is not None):
                raise ValueError(f"Auth settings not supported inside local/remote blocks: {kind}")
            siblings = top.scope.sections
        else:
            if kind not in CHILD_SECTION_KINDS.get(top.section.kind, ()):
                raise ValueError("Section not allowed here")
            siblings = top.section.children
        section = self._find_or_add(siblings, kind, name, path, line.lineno)
        self._stack.append(Frame(top.scope, section, path, line.lineno))

    @staticmethod
    def _find_or_add(siblings: list[Section], kind: str, name: str, path: str, lineno: int) -> Section:
        # Named blocks with the same type and name merge (Dovecot 1.6: that is how
        # 15-mailboxes.conf extends `namespace inbox`); passdb/userdb always append.
        if kind not in LIST_KINDS and (name or kind in SINGLETON_KINDS):
            for section in siblings:
                if section.kind == kind and section.name == name:
                    return section
        section = Section(kind, name, file=path, line=lineno)
        siblings.append(section)
        return section

    def _filter_scope(self, parent: Scope, kind: str, name: str, path: str, lineno: int) -> Scope:
        outer = parent.filter
        innermost = next((k for k in reversed(FILTER_KINDS) if _filter_has(outer, k)), None)
        if innermost is not None:
            if kind == innermost == "protocol":
                raise ValueError("Nested protocol { protocol { .. } } block not allowed")
            # same-kind nesting: protocol is refused above, local/remote are checked
            # for containment below, an inner local_name replaces the outer one
            if FILTER_KINDS.index(kind) < FILTER_KINDS.index(innermost):
                raise ValueError(f"{innermost} {{ {kind} {{ .. }} }} not allowed "
                                 f"(use {kind} {{ {innermost} {{ .. }} }} instead)")
        if not name and kind == "protocol":
            return parent  # `protocol {` with no name filters nothing (doveconf accepts it)
        if not name:
            raise ValueError(f"{kind} filter requires a value")
        if kind == "protocol":
            new = replace(outer, protocol=name)
        elif kind == "local_name":
            new = replace(outer, local_name=name)
        else:
            network = parse_network(name)
            current = outer.local if kind == "local" else outer.remote
            if current is not None and not (network.version == current.version
                                            and network.subnet_of(current)):  # type: ignore[arg-type]
                raise ValueError(f"{kind} net1 {{ {kind} net2 {{ .. }} }} requires net2 to be inside net1")
            new = (replace(outer, local=network, local_text=name) if kind == "local"
                   else replace(outer, remote=network, remote_text=name))
        for scope in self.scopes:
            if scope.filter.identity() == new.identity():
                return scope
        scope = Scope(new, path, lineno, parent=parent)
        self.scopes.append(scope)
        return scope

    # -- settings -----------------------------------------------------------------------
    def _assign(self, line: Line, path: str) -> None:
        key = line.key
        top = self._stack[-1]
        section = top.section
        if section is not None and section.kind in FREE_FORM_KINDS:
            type_name = "str"
        elif section is not None:
            known = SECTION_SETTINGS.get(section.kind, {})
            if key not in known:
                raise ValueError(f"Unknown setting: {key}{did_you_mean(key, known)}")
            type_name = known[key][0]
        else:
            if key not in SETTINGS:
                raise ValueError(f"Unknown setting: {key}{did_you_mean(key, SETTINGS)}")
            type_name = SETTINGS[key][0]
        value, dump, self_ref = self._value(line, path)
        from_file = line.kind is LineKind.KEY_FILE
        if not (from_file and not self.read_files):
            parse_value(type_name, value)  # raises ValueError with Dovecot's message
        if section is None:
            flt = top.scope.filter
            if (flt.local is not None or flt.remote is not None) and is_auth_setting(key):
                raise ValueError(f"Auth settings not supported inside local/remote blocks: {key}")
        assignment = Assignment(key, value, dump, path, line.lineno, from_file, self_ref)
        if section is not None:
            check_section_value(section, key, value)
            section.assign(assignment)
            return
        if top.scope is self.root:
            self._warn_earlier_filters(assignment)
        top.scope.assignments[key] = assignment
        if key not in IMPLEMENTED and key not in self._warned:
            self._warned.add(key)
            self.warnings.append(f"{path} line {line.lineno}: setting {key} is not implemented "
                                 "by maa-server and is ignored")

    def _warn_earlier_filters(self, assignment: Assignment) -> None:
        for scope in self.scopes:
            earlier = scope.assignments.get(assignment.key)
            if earlier is not None and earlier.self_reference:
                where = f"{earlier.file} line {earlier.line}"
                self.warnings.append(
                    f"Global setting {assignment.key} won't change the setting inside an earlier filter "
                    f"at {where} (if this is intentional, avoid this warning by moving the global "
                    f"setting before {where})")

    def _value(self, line: Line, path: str) -> tuple[str, str, bool]:
        """(value, doveconf -n form, references itself) of an assignment line."""
        if line.kind is LineKind.KEY_FILE:
            target = line.value
            if not os.path.isabs(target):
                target = os.path.join(os.path.dirname(path), target)
            if not self.read_files:
                return "", "<" + line.value, False
            try:
                return self.loader.read_text(target), "<" + line.value, False
            except OSError as exc:
                raise ValueError(f"{line.key}: Can't open file {target}: {exc.strerror or exc}") from None
        if line.kind is LineKind.KEY_VARIABLE:
            return self._expand(line.key, line.value)
        return line.value, line.value, False

    def _expand(self, key: str, text: str) -> tuple[str, str, bool]:
        # config_write_keyvariable(): words are split at spaces; a word starting
        # with `$` is replaced, `x$y` is not. `$key` inside `key` reads the value
        # from the enclosing scope and is also expanded for doveconf -n.
        values: list[str] = []
        dumps: list[str] = []
        self_ref = False
        for word in [w for w in text.split(" ") if w]:
            if not word.startswith("$"):
                values.append(word)
                dumps.append(word)
                continue
            name = word[1:]
            if name.startswith("ENV:"):
                values.append(self.environ.get(name[4:], ""))
                dumps.append(word)
                continue
            is_self = name == key
            self_ref = self_ref or is_self
            found = self._lookup(name, skip_current=is_self)
            if found is None:
                raise ValueError(f"Unknown variable: {word}")
            values.append(found)
            dumps.append(found if is_self else word)
        return " ".join(values), " ".join(dumps), self_ref

    def _lookup(self, name: str, skip_current: bool) -> str | None:
        frames = list(reversed(self._stack))
        # `$key` inside `key` reads the enclosing block's value; at top level the
        # enclosing value is the current global one (`protocols = $protocols imap`).
        if skip_current and len(frames) > 1:
            frames = frames[1:]
        for frame in frames:
            holder = frame.section.assignments if frame.section is not None else frame.scope.assignments
            if name in holder:
                return holder[name].value
        innermost = self._stack[-1].section
        if innermost is not None and name in SECTION_SETTINGS.get(innermost.kind, {}):
            return SECTION_SETTINGS[innermost.kind][name][1]
        if name in SETTINGS:
            return SETTINGS[name][1]
        return None


def is_auth_setting(key: str) -> bool:
    return (key.startswith("auth_") and key != "auth_socket_path") or key in AUTH_EXTRA_SETTINGS


def check_section_value(section: Section, key: str, value: str) -> None:
    """The checks Dovecot makes after parsing (mail-storage-settings.c,
    master-settings.c), reported here with the line that set the value."""
    if section.kind == "mailbox" and key == "special_use":
        for word in value.split():
            if word.lower() not in SPECIAL_USE:
                raise ValueError(f"mailbox {section.name}: unknown special_use: {word}")
    elif section.kind == "namespace" and key == "separator" and len(value) > 1:
        raise ValueError(f"Namespace '{section.get('prefix')}': Hierarchy separator must be only "
                         "one character long")
    elif section.kind == "service" and key == "type" and value not in SERVICE_TYPES:
        raise ValueError(f"Unknown service type: {value}")


def _filter_has(flt: Filter, kind: str) -> bool:
    return {"protocol": flt.protocol, "local": flt.local, "remote": flt.remote,
            "local_name": flt.local_name}[kind] is not None


def parse_network(text: str) -> Network:
    """`10.0.0.0/8`, `127.0.0.1`, `::1`, or a host name resolved now (as Dovecot does)."""
    address, _, bits = text.partition("/")
    address = address.strip("[]")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        try:
            infos = socket.getaddrinfo(address, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ValueError(f"gethostbyname({address}) failed: {reason}") from None
        ip = ipaddress.ip_address(str(infos[0][4][0]))
    if bits:
        if not bits.isdigit() or int(bits) > ip.max_prefixlen:
            raise ValueError(f"Invalid network mask: {text}")
        prefix = int(bits)
    else:
        prefix = ip.max_prefixlen
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
