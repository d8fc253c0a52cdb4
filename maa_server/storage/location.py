"""mail_location parsing: `maildir:PATH[:KEY=VALUE]...` as Dovecot reads it.

Dovecot source: src/lib-storage/mailbox-list.c (mailbox_list_settings_parse_full)
and src/lib/var-expand.c for the %-variables. Spec section 2.4.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from maa_server.storage.interface import MailboxError


class LocationError(MailboxError):
    """mail_location cannot be used: every login of the user fails."""

    code = "SERVERBUG"


# Keys Dovecot accepts in mail_location; those we do not act on are harmless
# for Maildir (spec 2.4).
_VALUE_KEYS = {
    "LAYOUT", "INBOX", "INDEX", "INDEXPVT", "INDEXCACHE", "CONTROL", "SUBSCRIPTIONS",
    "DIRNAME", "FULLDIRNAME", "MAILBOXDIR", "ALT", "VOLATILEDIR", "LISTINDEX",
    "BROKENCHAR", "POP3_DELETED_FLAG",
}
_FLAG_KEYS = {"UTF-8", "ALTNOCHECK", "ITERINDEX", "NO-NOSELECT", "NO-FS-VALIDATION", "FULL_FILESYSTEM_ACCESS"}


@dataclass(frozen=True, slots=True)
class MailLocation:
    """A resolved Maildir location (absolute paths, variables expanded)."""

    root: str
    layout: str = "maildir++"  # or "fs"
    inbox: str = ""  # INBOX= path; "" = the root
    index: str = ""  # INDEX= path; "" = beside the mail; "MEMORY" = none
    control: str = ""  # CONTROL= path; "" = beside the mail
    utf8: bool = False
    subscriptions_file: str = "subscriptions"

    @property
    def separator(self) -> str:
        return "/" if self.layout == "fs" else "."


def _expand_one(var: str, values: dict[str, str]) -> str | None:
    return values.get(var)


def expand_variables(template: str, user: str, home: str = "", extra: dict[str, str] | None = None) -> str:
    """Expand Dovecot %-variables: %u %n %d %h and their {long} names, with
    the modifiers L (lower), U (upper), R (reverse) and an optional
    `[offset.]length` prefix (src/lib/var-expand.c). Unknown ones stay."""
    name, _, domain = user.partition("@")
    short = {"u": user, "n": name, "d": domain, "h": home, "%": "%"}
    long = {"user": user, "username": name, "domain": domain, "home": home}
    if extra:
        long.update(extra)
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        ch = template[i]
        if ch != "%" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        j = i + 1
        # [-]offset.length
        sign = 1
        offset, length = 0, -1
        if j < n and template[j] == "-":
            sign = -1
            j += 1
        digits = ""
        while j < n and template[j].isdigit():
            digits += template[j]
            j += 1
        if digits:
            if j < n and template[j] == "." and j + 1 < n and template[j + 1].isdigit():
                offset = sign * int(digits)
                j += 1
                digits = ""
                while j < n and template[j].isdigit():
                    digits += template[j]
                    j += 1
                length = int(digits)
            else:
                length = int(digits)
        mods = ""
        while j < n and template[j] in "LURX":
            mods += template[j]
            j += 1
        if j >= n:
            out.append(template[i:])
            break
        if template[j] == "{":
            end = template.find("}", j)
            if end < 0:
                out.append(template[i:])
                break
            value = long.get(template[j + 1:end])
            j = end + 1
        else:
            value = short.get(template[j])
            j += 1
        if value is None:
            out.append(template[i:j])
            i = j
            continue
        if value != "%":
            for mod in mods:
                if mod == "L":
                    value = value.lower()
                elif mod == "U":
                    value = value.upper()
                elif mod == "R":
                    value = value[::-1]
            if length >= 0 or offset:
                value = value[offset:] if length < 0 else value[offset:offset + length]
        out.append(value)
        i = j
    return "".join(out)


def _split_parts(spec: str) -> list[str]:
    """Split on ':'; a literal ':' is written '::' (spec 2.4)."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(spec):
        if spec[i] == ":":
            if spec[i + 1:i + 2] == ":":
                cur.append(":")
                i += 2
                continue
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(spec[i])
        i += 1
    parts.append("".join(cur))
    return parts


def _expand_path(path: str, user: str, home: str, extra: dict[str, str] | None) -> str:
    path = expand_variables(path, user, home, extra)
    if path == "~" or path.startswith("~/"):
        if not home:
            raise LocationError(f"Home directory not set for user. Can't expand ~/ for {path}")
        path = home.rstrip("/") + path[1:]
    if path and not os.path.isabs(path):
        path = os.path.abspath(path)
    return path


def parse_mail_location(
    spec: str, user: str, home: str = "", extra: dict[str, str] | None = None,
) -> MailLocation:
    """Parse `maildir:~/Maildir:LAYOUT=fs:INBOX=...`. An empty spec means
    Dovecot's autodetection; we support its Maildir case (~/Maildir)."""
    spec = spec.strip()
    if not spec:
        if not home:
            raise LocationError("mail_location not set and autodetection failed: no home directory")
        spec = "maildir:~/Maildir"
    parts = _split_parts(spec)
    first = parts[0]
    if "/" not in first and "~" not in first and len(parts) > 1:
        fmt = first.lower()
        parts = parts[1:]
    else:
        fmt = "maildir"
    if fmt != "maildir":
        raise LocationError(f"Unsupported mail storage driver: {fmt} (only maildir)")
    root_raw = parts[0]
    if not root_raw:
        raise LocationError("mail_location: empty root path")
    options: dict[str, str] = {}
    flags: set[str] = set()
    for part in parts[1:]:
        if not part:
            continue
        key, eq, value = part.partition("=")
        if eq:
            if key.upper() not in _VALUE_KEYS:
                raise LocationError(f"Unknown setting: {key}")
            options[key.upper()] = value
        else:
            # `UTF8` is an error in Dovecot; only the exact `UTF-8` works.
            if part not in _FLAG_KEYS:
                raise LocationError(f"Unknown setting: {part}")
            flags.add(part)
    layout = options.get("LAYOUT", "maildir++").lower()
    if layout not in ("maildir++", "fs"):
        raise LocationError(f"Unknown mailbox list layout: {options['LAYOUT']}")

    def path_opt(key: str) -> str:
        value = options.get(key, "")
        if not value:
            return ""
        if key == "INDEX" and value.upper() == "MEMORY":
            return "MEMORY"
        return _expand_path(value, user, home, extra)

    return MailLocation(
        root=_expand_path(root_raw, user, home, extra),
        layout=layout,
        inbox=path_opt("INBOX"),
        index=path_opt("INDEX"),
        control=path_opt("CONTROL"),
        utf8="UTF-8" in flags,
        subscriptions_file=options.get("SUBSCRIPTIONS", "") or "subscriptions",
    )
