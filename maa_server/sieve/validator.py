"""Sieve validation: names, required extensions, argument shapes (RFC 5228
section 8.2 and each extension's grammar), with Pigeonhole's messages.

Validation also sorts each node's arguments into `tags` and `positional`
so the interpreter never looks at raw syntax."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

from maa_server.sieve.enotify import method_error
from maa_server.sieve.errors import SieveError, at
from maa_server.sieve.signatures import COMMANDS, EXTENSIONS, TESTS, Signature
from maa_server.sieve.syntax import Command, StringList, Tag, Test, parse

_ENCODED = re.compile(r"\$\{(hex|unicode):([^}]*)\}", re.IGNORECASE)


@dataclass
class Script:
    commands: list[Command]
    extensions: frozenset[str]  # required by the script
    name: str = ""
    available: frozenset[str] = EXTENSIONS  # what `ihave` may find


def compile_script(text: str, name: str = "script",
                   extensions: frozenset[str] = EXTENSIONS) -> Script:
    """Parse and validate; raises SieveError listing every problem found.
    `extensions` are the capabilities a script may require."""
    commands = parse(text)
    v = _Validator(extensions)
    v.block(commands, top=True)
    if v.errors:
        raise SieveError(v.errors)
    return Script(commands, frozenset(v.required), name, extensions)


class _Validator:
    def __init__(self, extensions: frozenset[str]) -> None:
        self.extensions = extensions
        self.errors: list[str] = []
        self.required: set[str] = set()
        self.reported: set[str] = set()
        self.loops: list[str] = []  # names of the enclosing foreverypart loops

    def error(self, line: int, message: str) -> None:
        self.errors.append(at(line, message))

    def block(self, commands: list[Command], top: bool = False) -> None:
        seen_other = False
        previous = ""
        for cmd in commands:
            if cmd.name == "require":
                if not top or seen_other:
                    self.error(cmd.line, "require command can only be placed at top level "
                                         "at the beginning of the file.")
            else:
                seen_other = True
            if cmd.name in ("elsif", "else") and previous not in ("if", "elsif"):
                self.error(cmd.line, f"the {cmd.name} command must follow an if or elseif command.")
            previous = cmd.name
            self.command(cmd)

    def _known(self, table: dict[str, Signature], name: str, line: int, what: str) -> Signature | None:
        sig = table.get(name)
        if sig is None or (sig.extension and sig.extension not in self.required):
            key = f"{what}:{name}"
            if key not in self.reported:
                self.reported.add(key)
                self.error(line, f"unknown {what} '{name}' (only reported once at first occurrence).")
            return None
        return sig

    def command(self, cmd: Command) -> None:
        sig = self._known(COMMANDS, cmd.name, cmd.line, "command")
        if sig is None:
            return
        self.arguments(cmd, sig, "command")
        if cmd.name == "require":
            for cap in cast("list[str]", cmd.positional[0] if cmd.positional else []):
                if cap not in self.extensions:
                    self.error(cmd.line, f"require command: unknown Sieve capability `{cap}'.")
                else:
                    self.required.add(cap)
                    if cap == "spamtestplus":  # RFC 5235 1: it includes spamtest
                        self.required.add("spamtest")
        if cmd.name in ("break", "extracttext"):
            self.check_in_loop(cmd)
        if cmd.name == "notify" and cmd.positional:
            method = str(cmd.positional[0])
            problem = "" if "${" in method else method_error(method)  # variables: checked at run time
            if problem:
                self.error(cmd.line, problem)
            importance = str(cmd.tags.get("importance", "2"))
            if importance not in ("1", "2", "3") and "${" not in importance:
                self.error(cmd.line, f"notify command: invalid :importance value '{importance}'.")
        if sig.tests == "one" and len(cmd.tests) != 1:
            self.error(cmd.line, f"the {cmd.name} command requires one test argument.")
        elif sig.tests == "none" and cmd.tests:
            self.error(cmd.line, f"the {cmd.name} command accepts no test arguments.")
        for test in cmd.tests:
            self.test(test)
        if sig.block and cmd.block is None:
            self.error(cmd.line, f"the {cmd.name} command requires a command block, but it is missing.")
        elif not sig.block and cmd.block is not None:
            self.error(cmd.line, f"the {cmd.name} command does not accept a command block.")
        if cmd.block is not None:
            looping = cmd.name == "foreverypart"
            if looping:
                self.loops.append(str(cmd.tags.get("name", "")))
            self.block(cmd.block)
            if looping:
                self.loops.pop()

    def check_in_loop(self, cmd: Command) -> None:
        """RFC 5703 3: break and extracttext only inside foreverypart."""
        name = str(cmd.tags.get("name", "")) if cmd.name == "break" else ""
        if not self.loops:
            self.error(cmd.line, f"the {cmd.name} command is not placed inside a foreverypart loop.")
        elif name and name not in self.loops:
            self.error(cmd.line, f"the {cmd.name} command is not placed inside a foreverypart loop "
                                 f"named `{name}'.")

    def test(self, test: Test) -> None:
        sig = self._known(TESTS, test.name, test.line, "test")
        if sig is None:
            return
        self.arguments(test, sig, "test")
        if sig.tests == "one" and len(test.tests) != 1:
            self.error(test.line, f"the {test.name} test requires one test argument.")
        elif sig.tests == "list" and not test.tests:
            self.error(test.line, f"the {test.name} test requires a list of tests.")
        elif sig.tests == "none" and test.tests:
            self.error(test.line, f"the {test.name} test accepts no test arguments.")
        for sub in test.tests:
            self.test(sub)

    def arguments(self, node: Command | Test, sig: Signature, what: str) -> None:
        tags: dict[str, object] = {}
        groups: dict[str, str] = {}
        positional: list[object] = []
        args = node.args
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if isinstance(arg, Tag):
                spec = sig.tags.get(arg.name)
                if spec is None or (spec.extension and spec.extension not in self.required):
                    self.error(arg.line, f"unknown tagged argument ':{arg.name}' for the {node.name} "
                                         f"{what} (reported only once at first occurrence).")
                    continue
                if positional:
                    self.error(arg.line, f"tagged argument ':{arg.name}' must come before the "
                                         f"positional arguments of the {node.name} {what}.")
                if spec.group:
                    if spec.group in groups:
                        self.error(arg.line, f"encountered duplicate {spec.group} argument "
                                             f"(:{arg.name}) for the {node.name} {what}.")
                    groups[spec.group] = arg.name
                value: object = True
                if spec.kind is not None:
                    if i >= len(args) or isinstance(args[i], Tag):
                        self.error(arg.line, f"the :{arg.name} tag for the {node.name} {what} "
                                             f"requires a {spec.kind} argument.")
                        continue
                    value = self._value(args[i], spec.kind, node, f":{arg.name} tag", what)
                    i += 1
                tags[arg.name] = value
            else:
                positional.append(arg)
        want = len(sig.positional)
        if not (want - sig.optional_leading <= len(positional) <= want):
            self.error(node.line, f"the {node.name} {what} requires {want} positional argument(s), "
                                  f"but {len(positional)} is/are specified.")
            node.tags, node.positional = tags, []
            return
        kinds = sig.positional[want - len(positional):]
        names = sig.names[want - len(positional):] if sig.names else ("",) * len(kinds)
        values: list[object] = []
        for n, (value_arg, kind, label) in enumerate(zip(positional, kinds, names), 1):
            values.append(self._value(value_arg, kind, node, f"argument {n} ({label})", what))
        if len(positional) < want:  # an optional leading positional was left out
            values = [None] * (want - len(positional)) + values
        node.tags, node.positional = tags, values
        if "comparator" in tags:
            comp = str(tags["comparator"]).lower()
            if comp not in ("i;octet", "i;ascii-casemap") and f"comparator-{comp}" not in self.required:
                self.error(node.line, f"unknown comparator '{comp}'.")
        for tag in ("count", "value"):
            if tag in tags and str(tags[tag]) not in ("gt", "ge", "lt", "le", "eq", "ne"):
                self.error(node.line, f"invalid relational match type '{tags[tag]}'.")

    def _value(self, arg: object, kind: str, node: Command | Test, label: str, what: str) -> object:
        if kind == "number":
            if isinstance(arg, int) and not isinstance(arg, bool):
                return arg
            self.error(node.line, f"the {node.name} {what} expects a number as {label}, "
                                  f"but {_kind_name(arg)} was found.")
            return 0
        if not isinstance(arg, StringList):
            self.error(node.line, f"the {node.name} {what} expects a {_want_name(kind)} as {label}, "
                                  f"but {_kind_name(arg)} was found.")
            return "" if kind == "string" else []
        values = [self._decode(v) for v in arg.values]
        if kind == "string":
            if not arg.single:
                self.error(node.line, f"the {node.name} {what} expects a string as {label}, "
                                      f"but a string list was found.")
                return values[0] if values else ""
            return values[0]
        return values

    def _decode(self, value: str) -> str:
        """RFC 5228 2.4.2.4 encoded-character, done once at compile time."""
        if "encoded-character" not in self.required or "${" not in value:
            return value
        return _ENCODED.sub(_decode_encoded, value)


def _decode_encoded(m: re.Match[str]) -> str:
    kind, body = m.group(1).lower(), m.group(2).split()
    try:
        if kind == "hex":
            return bytes(int(h, 16) for h in body).decode("utf-8")
        return "".join(chr(int(h, 16)) for h in body)
    except (ValueError, UnicodeDecodeError):
        return m.group(0)  # malformed: left as is, as RFC 5228 says


def _kind_name(arg: object) -> str:
    if isinstance(arg, StringList):
        return "a string" if arg.single else "a string list"
    if isinstance(arg, int):
        return "a number"
    return "a tag"


def _want_name(kind: str) -> str:
    return "string list" if kind == "stringlist" else kind
