"""Running a compiled Sieve script against one message (RFC 5228 section 4
semantics: implicit keep, cancellation, stop), with the extensions of
`signatures`. Produces actions; carrying them out (storing,
sending) is the delivery layer's job."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from maa_server.sieve.enotify import Notify, method_error
from maa_server.sieve.errors import SieveRuntimeError
from maa_server.sieve.matching import Matcher
from maa_server.sieve.message import SieveMessage
from maa_server.sieve.mime import Part, all_parts, descendants, option_values
from maa_server.sieve.spamtest import StatusTest
from maa_server.sieve.syntax import Command, Test
from maa_server.sieve.validator import Script

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*|[0-9]+)\}")


@dataclass(frozen=True)
class Vacation:
    reason: str
    days: int | None = None  # None: sieve_vacation_default_period (7 days)
    seconds: int | None = None
    subject: str = ""
    from_: str = ""
    addresses: tuple[str, ...] = ()
    mime: bool = False
    handle: str = ""

    @property
    def period(self) -> int:
        if self.seconds is not None:
            return self.seconds
        return (self.days if self.days is not None else 7) * 86400


@dataclass(frozen=True)
class Action:
    kind: str  # store, redirect, discard, reject, ereject, vacation
    mailbox: str = ""
    flags: tuple[str, ...] = ()
    create: bool = False
    address: str = ""
    reason: str = ""
    vacation: Vacation | None = None
    keep: bool = False  # a `keep` (the default mailbox), not `fileinto`
    notify: Notify | None = None


@dataclass
class ExecutionResult:
    actions: list[Action] = field(default_factory=list)
    implicit_keep: bool = True
    keep_flags: tuple[str, ...] = ()
    error: str = ""  # set when the script failed at run time: the caller keeps


@dataclass
class RunLimits:
    max_actions: int = 32  # sieve_max_actions
    max_redirects: int = 4  # sieve_max_redirects


class _Stop(Exception):
    pass


class _Return(Exception):
    pass


class _Break(Exception):
    """RFC 5703 3.2: leaves the named (or innermost) foreverypart loop."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def run(script: Script, message: SieveMessage, *,
        mailbox_exists: Callable[[str], bool] = lambda name: True,
        include: Callable[[str, str], Script | None] | None = None,
        duplicate: Callable[[str, int], bool] = lambda key, seconds: False,
        environment: dict[str, str] | None = None,
        limits: RunLimits | None = None,
        status_tests: dict[str, StatusTest] | None = None) -> ExecutionResult:
    """Runs the script; never raises for a script error (the result carries
    `error` and keeps the message, as Pigeonhole does)."""
    state = _Interpreter(message, mailbox_exists, include, duplicate, environment or {},
                         limits or RunLimits())
    state.status_tests = status_tests or {}
    try:
        state.run_script(script)
    except _Stop:
        pass
    except SieveRuntimeError as exc:
        return ExecutionResult([], True, (), str(exc))
    return state.result()


class _Interpreter:
    def __init__(self, message: SieveMessage, mailbox_exists: Callable[[str], bool],
                 include: Callable[[str, str], Script | None] | None,
                 duplicate: Callable[[str, int], bool], environment: dict[str, str],
                 limits: RunLimits) -> None:
        self.message = message
        self.mailbox_exists = mailbox_exists
        self.include_loader = include
        self.duplicate = duplicate
        self.environment = {"domain": "", "host": "", "location": "MDA", "name": "Pigeonhole",
                            "phase": "during", "version": "0.5", **environment}
        self.limits = limits
        self.actions: list[Action] = []
        self.implicit_keep = True
        self.variables: dict[str, str] = {}
        self.globals: dict[str, str] = {}
        self.match_values: list[str] = []
        self.variables_on = False
        self.included: set[str] = set()
        self.available: frozenset[str] = frozenset()
        self.depth = 0
        self.status_tests: dict[str, StatusTest] = {}  # spamtest / virustest settings
        self.parts: list[Part] | None = None  # parsed on first use
        self.part: Part | None = None  # foreverypart's current part; None: the message

    # --- driver ---------------------------------------------------------

    def run_script(self, script: Script) -> None:
        outer = self.variables_on
        self.variables_on = "variables" in script.extensions
        self.available = script.available
        try:
            self.block(script.commands)
        except _Return:
            pass
        finally:
            self.variables_on = outer

    def result(self) -> ExecutionResult:
        flags = tuple(_split_flags(self.variables.get("", "")))
        return ExecutionResult(self.actions, self.implicit_keep, flags)

    def block(self, commands: list[Command]) -> None:
        last_if: bool | None = None
        for cmd in commands:
            name = cmd.name
            if name == "if":
                last_if = self.test(cmd.tests[0])
                if last_if:
                    self.block(cmd.block or [])
            elif name == "elsif":
                if last_if is False:
                    last_if = self.test(cmd.tests[0])
                    if last_if:
                        self.block(cmd.block or [])
            elif name == "else":
                if last_if is False:
                    self.block(cmd.block or [])
                last_if = None
            else:
                last_if = None
                self.command(cmd)

    # --- strings and variables -----------------------------------------

    def expand(self, value: str) -> str:
        """RFC 5229 3: ${name} and ${N}; unknown names expand to ""."""
        if not self.variables_on or "${" not in value:
            return value
        return _VARIABLE.sub(self._lookup, value)

    def _lookup(self, m: re.Match[str]) -> str:
        name = m.group(1).lower()
        if name.isdigit():
            idx = int(name)
            return self.match_values[idx] if idx < len(self.match_values) else ""
        if name.startswith("env."):
            return self.environment.get(name[4:], "")
        if name.startswith("global."):
            return self.globals.get(name[7:], "")
        return self.variables.get(name, self.globals.get(name, ""))

    def strings(self, values: object) -> list[str]:
        return [self.expand(v) for v in cast("list[str]", values)]

    def matcher(self, node: Test) -> Matcher:
        return Matcher(node.tags)

    def matched(self, matcher: Matcher, values: list[str], keys: list[str]) -> bool:
        ok = matcher.match(values, keys)
        if ok and matcher.captures is not None and self.variables_on:
            self.match_values = matcher.captures
        return ok

    # --- tests ------------------------------------------------------------

    def test(self, t: Test) -> bool:
        name, tags, pos = t.name, t.tags, t.positional
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "not":
            return not self.test(t.tests[0])
        if name == "anyof":
            return any(self.test(sub) for sub in t.tests)
        if name == "allof":
            return all(self.test(sub) for sub in t.tests)
        if name == "header":
            if "mime" in tags:
                values = [v for p in self.mime_scope(tags) for h in self.strings(pos[0])
                          for v in option_values(p, h, tags)]
            else:
                values = [v for h in self.strings(pos[0])
                          for v in self._indexed(self.message.headers(h), tags)]
            return self.matched(self.matcher(t), values, self.strings(pos[1]))
        if name == "address":
            if "mime" in tags:
                found = [a for p in self.mime_scope(tags) for h in self.strings(pos[0]) for a in p.addresses(h)]
            else:
                found = [a for h in self.strings(pos[0]) for a in self._indexed(self.message.addresses(h), tags)]
            parts = [v for a in found if (v := _address_part(a, tags)) is not None]
            return self.matched(self.matcher(t), parts, self.strings(pos[1]))
        if name == "envelope":
            values = []
            for part in self.strings(pos[0]):
                addr = {"from": self.message.envelope.mail_from, "to": self.message.envelope.rcpt_to,
                        "auth": self.message.envelope.auth}.get(part.lower())
                if addr is not None:
                    v = _address_part(addr, tags) if addr else ""
                    if v is not None:
                        values.append(v)
            return self.matched(self.matcher(t), values, self.strings(pos[1]))
        if name == "exists":
            if "mime" in tags:
                scope = self.mime_scope(tags)
                return all(any(p.headers(h) for p in scope) for h in self.strings(pos[0]))
            return all(self.message.headers(h) for h in self.strings(pos[0]))
        if name == "size":
            size = len(self.message.raw)
            return size > pos[0] if "over" in tags else size < pos[0]  # type: ignore[operator]
        if name == "body":
            if "raw" in tags:
                text = self.message.raw_body
            elif "content" in tags and not any(c.lower().startswith("text") or c == ""
                                               for c in self.strings(tags["content"])):
                text = ""
            else:
                text = self.message.text
            return self.matched(self.matcher(t), [text], self.strings(pos[0]))
        if name == "string":
            return self.matched(self.matcher(t), self.strings(pos[0]), self.strings(pos[1]))
        if name == "hasflag":
            names = self.strings(pos[0]) if pos[0] is not None else [""]
            flags = [f for n in names for f in _split_flags(self.variables.get(n.lower(), ""))]
            return self.matched(self.matcher(t), flags, self.strings(pos[1]))
        if name == "mailboxexists":
            return all(self.mailbox_exists(m) for m in self.strings(pos[0]))
        if name == "environment":
            value = self.environment.get(self.expand(str(pos[0])).lower())
            return value is not None and self.matched(self.matcher(t), [value], self.strings(pos[1]))
        if name == "ihave":
            return all(c in self.available for c in self.strings(pos[0]))
        if name in ("spamtest", "virustest"):
            # Not configured: "0", the message was not tested (RFC 3685 3.1).
            config = self.status_tests.get(name)
            value = config.value(self.message, "percent" in tags) if config else "0"
            return self.matched(self.matcher(t), [value], self.strings(pos[0]))
        if name == "valid_notify_method":
            return all(not method_error(uri) for uri in self.strings(pos[0]))
        if name == "notify_method_capability":
            # RFC 5436 2.3: mailto only knows "online", and cannot tell: "maybe".
            uri, capability = self.expand(str(pos[0])), self.expand(str(pos[1])).lower()
            if method_error(uri) or capability != "online":
                return False
            return self.matched(self.matcher(t), ["maybe"], self.strings(pos[2]))
        if name in ("date", "currentdate"):
            return self.date_test(t)
        if name == "duplicate":
            return self.duplicate_test(t)
        raise SieveRuntimeError(f"line {t.line}: test '{name}' is not supported at run time")

    # --- MIME (RFC 5703) ------------------------------------------------------

    def all_parts(self) -> list[Part]:
        if self.parts is None:
            self.parts = all_parts(self.message.raw)
        return self.parts

    def mime_scope(self, tags: dict[str, object]) -> list[Part]:
        """The part a :mime test looks at, or with :anychild it and all below."""
        current = self.part or self.all_parts()[0]
        return descendants(self.all_parts(), current) if "anychild" in tags else [current]

    def foreverypart(self, cmd: Command) -> None:
        name = self.expand(str(cmd.tags.get("name", "")))
        outer = self.part
        scope = descendants(self.all_parts(), outer) if outer else self.all_parts()
        try:
            for part in scope:
                self.part = part
                self.block(cmd.block or [])
        except _Break as brk:
            if brk.name and brk.name != name:
                raise
        finally:
            self.part = outer

    def extracttext(self, cmd: Command) -> None:
        text = self.part.text if self.part is not None else ""
        if "first" in cmd.tags:
            # Pigeonhole counts octets, not characters (observed with sieve-test);
            # a character cut in two is dropped rather than left broken.
            limit = int(cmd.tags["first"])  # type: ignore[call-overload]
            text = text.encode("utf-8")[:limit].decode("utf-8", "ignore")
        tags = {k: v for k, v in cmd.tags.items() if k != "first"}
        self.set_command(tags, [cmd.positional[0], text], expand=False)

    def _indexed(self, values: list[str], tags: dict[str, object]) -> list[str]:
        """RFC 5260 :index / :last."""
        if "index" not in tags:
            return values
        idx = cast(int, tags["index"])
        if "last" in tags:
            values = values[::-1]
        return [values[idx - 1]] if 0 < idx <= len(values) else []

    def date_test(self, t: Test) -> bool:
        tags, pos = t.tags, t.positional
        when: datetime.datetime | None
        if t.name == "currentdate":
            when = datetime.datetime.now(datetime.UTC).astimezone()
            part, keys = self.expand(str(pos[0])), self.strings(pos[1])
        else:
            header = self.expand(str(pos[0]))
            values = self._indexed(self.message.headers(header), tags)
            when = None
            for value in values[:1]:
                try:
                    import email.utils
                    when = email.utils.parsedate_to_datetime(value)
                except (TypeError, ValueError, IndexError):
                    when = None
            if when is None:
                return False
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.UTC)
            part, keys = self.expand(str(pos[1])), self.strings(pos[2])
            if "originalzone" not in tags and "zone" not in tags:
                when = when.astimezone()
        assert when is not None
        if "zone" in tags:
            zone = self.expand(str(tags["zone"]))
            m = re.fullmatch(r"([+-])(\d\d)(\d\d)", zone)
            if m:
                delta = datetime.timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
                when = when.astimezone(datetime.timezone(delta if m.group(1) == "+" else -delta))
        found = _date_part(when, part.lower())
        if found is None:
            return False
        return self.matched(self.matcher(t), [found], keys)

    def duplicate_test(self, t: Test) -> bool:
        tags = t.tags
        if "uniqueid" in tags:
            key = self.expand(str(tags["uniqueid"]))
        else:
            header = self.expand(str(tags.get("header", "message-id")))
            values = self.message.headers(header)
            if not values:
                return False
            key = values[0]
        seconds = cast(int, tags.get("seconds", 7 * 86400))
        handle = self.expand(str(tags.get("handle", "")))
        return self.duplicate(f"{handle}\0{key}", seconds)

    # --- commands -----------------------------------------------------------

    def command(self, cmd: Command) -> None:
        name, tags, pos = cmd.name, cmd.tags, cmd.positional
        if name == "require":
            return
        if name == "stop":
            raise _Stop()
        if name == "return":
            raise _Return()
        if name == "keep":
            flags = self._action_flags(tags)
            self.add(Action("store", "INBOX", flags, keep=True))
            self.implicit_keep = False
        elif name == "discard":
            self.implicit_keep = False
        elif name == "fileinto":
            mailbox = self.expand(str(pos[0]))
            self.add(Action("store", mailbox, self._action_flags(tags), create="create" in tags))
            if "copy" not in tags:
                self.implicit_keep = False
        elif name == "redirect":
            count = sum(a.kind == "redirect" for a in self.actions) + 1
            if count > self.limits.max_redirects:
                raise SieveRuntimeError(f"line {cmd.line}: error: number of redirect actions exceeds "
                                        f"policy limit ({count} > {self.limits.max_redirects}).")
            self.add(Action("redirect", address=self.expand(str(pos[0]))))
            if "copy" not in tags:
                self.implicit_keep = False
        elif name in ("reject", "ereject"):
            self.add(Action(name, reason=self.expand(str(pos[0]))))
            self.implicit_keep = False
        elif name == "vacation":
            self.add(Action("vacation", vacation=Vacation(
                reason=self.expand(str(pos[0])), days=int(tags["days"]) if "days" in tags else None,  # type: ignore[call-overload]
                seconds=cast(int, tags["seconds"]) if "seconds" in tags else None,
                subject=self.expand(str(tags.get("subject", ""))),
                from_=self.expand(str(tags.get("from", ""))),
                addresses=tuple(self.strings(tags.get("addresses", []))),
                mime="mime" in tags, handle=self.expand(str(tags.get("handle", ""))))))
        elif name == "foreverypart":
            self.foreverypart(cmd)
        elif name == "break":
            raise _Break(self.expand(str(tags.get("name", ""))))
        elif name == "extracttext":
            self.extracttext(cmd)
        elif name == "notify":
            method = self.expand(str(pos[0]))
            problem = method_error(method)
            if problem:
                raise SieveRuntimeError(f"line {cmd.line}: error: {problem}")
            self.add(Action("notify", notify=Notify(
                method, from_=self.expand(str(tags.get("from", ""))),
                importance=self.expand(str(tags.get("importance", "2"))),
                options=tuple(self.strings(tags.get("options", []))),
                message=self.expand(str(tags.get("message", ""))))))
        elif name in ("setflag", "addflag", "removeflag"):
            self.flag_command(name, pos)
        elif name == "set":
            self.set_command(tags, pos)
        elif name == "include":
            self.include(cmd)
        elif name == "global":
            for var in self.strings(pos[0]):
                self.globals.setdefault(var.lower(), "")
        else:
            raise SieveRuntimeError(f"line {cmd.line}: command '{name}' is not supported at run time")

    def add(self, action: Action) -> None:
        # Duplicate stores into one folder are merged (RFC 5228 4.2 / 4.1).
        if action.kind == "store" and any(a.kind == "store" and a.mailbox == action.mailbox
                                          for a in self.actions):
            return
        if action.kind == "redirect" and any(a.kind == "redirect" and a.address == action.address
                                             for a in self.actions):
            return
        if len(self.actions) >= self.limits.max_actions:
            raise SieveRuntimeError(f"error: total number of actions exceeds policy limit "
                                    f"({self.limits.max_actions})")
        self.actions.append(action)

    def _action_flags(self, tags: dict[str, object]) -> tuple[str, ...]:
        if "flags" in tags:
            return tuple(_dedupe([f for v in self.strings(tags["flags"]) for f in _split_flags(v)]))
        return tuple(_split_flags(self.variables.get("", "")))

    def flag_command(self, name: str, pos: list[object]) -> None:
        var = self.expand(str(pos[0])).lower() if pos[0] is not None else ""
        new = [f for v in self.strings(pos[1]) for f in _split_flags(v)]
        current = _split_flags(self.variables.get(var, ""))
        if name == "setflag":
            result = _dedupe(new)
        elif name == "addflag":
            result = _dedupe(current + new)
        else:
            drop = {f.lower() for f in new}
            result = [f for f in current if f.lower() not in drop]
        self.variables[var] = " ".join(result)

    def set_command(self, tags: dict[str, object], pos: list[object], expand: bool = True) -> None:
        name = self.expand(str(pos[0])).lower()
        value = self.expand(str(pos[1])) if expand else str(pos[1])
        # RFC 5229 4.1: higher precedence first.
        if "lower" in tags:
            value = value.lower()
        if "upper" in tags:
            value = value.upper()
        if "lowerfirst" in tags:
            value = value[:1].lower() + value[1:]
        if "upperfirst" in tags:
            value = value[:1].upper() + value[1:]
        if "quotewildcard" in tags:
            value = re.sub(r"([*?\\])", r"\\\1", value)
        if "quoteregex" in tags:
            value = re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", value)
        if "encodeurl" in tags:
            from urllib.parse import quote
            value = quote(value, safe="-._~")
        if "length" in tags:
            value = str(len(value))
        if name in self.globals:
            self.globals[name] = value
        else:
            self.variables[name] = value

    def include(self, cmd: Command) -> None:
        location = "global" if "global" in cmd.tags else "personal"
        name = self.expand(str(cmd.positional[0]))
        key = f"{location}:{name}"
        if "once" in cmd.tags and key in self.included:
            return
        self.included.add(key)
        script = self.include_loader(name, location) if self.include_loader else None
        if script is None:
            if "optional" in cmd.tags:
                return
            raise SieveRuntimeError(f"line {cmd.line}: error: include: script '{name}' not found")
        self.depth += 1
        if self.depth > 10:  # sieve_include_max_nesting_depth
            raise SieveRuntimeError(f"line {cmd.line}: error: include nesting too deep")
        saved = self.variables
        self.variables = {}  # included scripts see only globals (RFC 6609 3.2)
        try:
            self.run_script(script)
        finally:
            flags = self.variables.get("")
            self.variables = saved
            if flags is not None:
                self.variables[""] = flags
            self.depth -= 1


def _split_flags(value: str) -> list[str]:
    return [f for f in value.split() if f]


def _dedupe(flags: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for f in flags:
        if f.lower() not in seen:
            seen.add(f.lower())
            out.append(f)
    return out


def _address_part(addr: str, tags: dict[str, object]) -> str | None:
    local, _, domain = addr.rpartition("@") if "@" in addr else (addr, "", "")
    if "localpart" in tags:
        return local
    if "domain" in tags:
        return domain
    if "user" in tags or "detail" in tags:
        user, sep, detail = local.partition("+")  # recipient_delimiter
        if "user" in tags:
            return user
        return detail if sep else None
    return addr


def _date_part(when: datetime.datetime, part: str) -> str | None:
    offset = when.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    zone = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    parts = {
        "year": f"{when.year:04d}", "month": f"{when.month:02d}", "day": f"{when.day:02d}",
        "date": when.strftime("%Y-%m-%d"), "hour": f"{when.hour:02d}", "minute": f"{when.minute:02d}",
        "second": f"{when.second:02d}", "time": when.strftime("%H:%M:%S"),
        "julian": str((when.date() - datetime.date(1858, 11, 17)).days),
        "iso8601": when.strftime("%Y-%m-%dT%H:%M:%S") + zone[:3] + ":" + zone[3:],
        "std11": when.strftime("%a, %d %b %Y %H:%M:%S ") + zone,
        "zone": zone, "weekday": str((when.weekday() + 1) % 7),
    }
    return parts.get(part)
