"""Regenerate maa_server/config/table.py from the installed Dovecot's `doveconf -a`.

Run `python -m maa_server.config.gen_table > maa_server/config/table.py` on a
host with Debian's dovecot-core 2.3.19. `doveconf -a` prints every setting with
its default but not its type, so the type is inferred from the default's shape
(`yes`/`no` -> bool, `2 secs` -> time, `64 k` -> size, `0600` -> octal, digits
-> uint) plus the overrides below, which come from Dovecot's own setting
definitions (src/*/*-settings.c: SET_ENUM lists, SET_SIZE / SET_TIME settings
whose default of 0 hides their type).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

# SET_ENUM settings: the colon lists as compiled into the Dovecot 2.3.19 binaries.
ENUMS: dict[str, str] = {
    "ssl": "yes:no:required",
    "mail_fsync": "optimized:always:never",
    "lock_method": "fcntl:flock:dotlock",
    "imap_fetch_failure": "disconnect-immediately:disconnect-after:no-after",
    "pop3_uidl_duplicates": "allow:rename",
    "pop3_delete_type": "default:expunge:flag",
    "lmtp_hdr_delivery_address": "final:none:original",
    "imapc_ssl": "no:imaps:starttls",
    "pop3c_ssl": "no:pop3s:starttls",
    "submission_relay_ssl": "no:smtps:starttls",
    "submission_ssl": "no:smtps:submissions:starttls",
    "doveadm_ssl": "no:ssl:starttls",
    "passdb.skip": "never:authenticated:unauthenticated",
    "userdb.skip": "never:found:notfound",
    "passdb.auth_verbose": "default:yes:no",
    "userdb.auth_verbose": "default:yes:no",
    "passdb.result_success": "return-ok:return:return-fail:continue:continue-ok:continue-fail",
    "passdb.result_failure": "continue:return:return-ok:return-fail:continue-ok:continue-fail",
    "passdb.result_internalfail": "continue:return:return-ok:return-fail:continue-ok:continue-fail",
    "userdb.result_success": "return-ok:return:return-fail:continue:continue-ok:continue-fail",
    "userdb.result_failure": "continue:return:return-ok:return-fail:continue-ok:continue-fail",
    "userdb.result_internalfail": "continue:return:return-ok:return-fail:continue-ok:continue-fail",
    "namespace.type": "private:shared:public",
    "namespace.list": "yes:no:children",
    "mailbox.auto": "no:create:subscribe",
}

# Settings whose default (0) does not show their type.
SIZES = {"auth_cache_size", "imapc_max_line_length", "mbox_min_index_size", "submission_max_mail_size"}
TIMES = {"imap_hibernate_timeout", "login_proxy_max_disconnect_delay", "mail_max_lock_timeout",
         "mdbox_rotate_interval", "service.idle_kill", "mailbox.autoexpunge"}
PORTS = {"doveadm_port", "imap_urlauth_port", "imapc_port", "pop3c_port", "replicator_port",
         "submission_relay_port", "inet_listener.port"}
# Settings that look numeric/boolean but are strings in Dovecot.
STRINGS = {"mbox_md5"}
# Strings with their own check (auth-settings.c: no, yes, plain, sha1, optional :N).
SPECIAL = {"auth_verbose_passwords": "verbose_passwords"}

SIZE_RE = re.compile(r"^\d+ [BkMGT]$")
TIME_RE = re.compile(r"^\d+ (secs|mins|hours|days|weeks|ms)$")


def infer_type(key: str, default: str) -> str:
    """The type word for one setting (`key` is `name` or `section.name`)."""
    name = key.rsplit(".", 1)[-1]
    # A section key (`inet_listener.ssl`) never falls back to the global
    # setting of the same name (`ssl`), which has another type.
    for candidate in (key,) if "." in key else (name,):
        if candidate in SPECIAL:
            return SPECIAL[candidate]
        if candidate in ENUMS:
            return "enum:" + ENUMS[candidate]
        if candidate in STRINGS:
            return "str"
        if candidate in SIZES:
            return "size"
        if candidate in TIMES:
            return "time"
        if candidate in PORTS:
            return "port"
    if default in ("yes", "no"):
        return "bool"
    if TIME_RE.match(default):
        return "time"
    if SIZE_RE.match(default):
        return "size"
    if re.fullmatch(r"0[0-7]+", default):
        return "octal"
    if default.isdigit():
        return "uint"
    return "str"


def run_doveconf(text: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dovecot.conf"
        path.write_text(text)
        out = subprocess.run(["doveconf", "-a", "-c", str(path)], check=True,
                             capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line and not line.startswith("#")]


def parse_dump(lines: list[str]) -> tuple[dict[str, str], list[tuple[str, str, dict[str, str], list]]]:
    """Top-level settings and sections (kind, name, settings, children) of a dump."""
    root: dict[str, str] = {}
    sections: list[tuple[str, str, dict[str, str], list]] = []
    stack: list[tuple[dict[str, str], list]] = [(root, sections)]
    for raw in lines:
        line = raw.strip()
        if line == "}":
            stack.pop()
        elif line.endswith("{"):
            head = line[:-1].strip().split(None, 1)
            entry: tuple[str, str, dict[str, str], list] = (head[0], head[1] if len(head) > 1 else "", {}, [])
            stack[-1][1].append(entry)
            stack.append((entry[2], entry[3]))
        else:
            key, _, value = line.partition(" = ")
            key = key.rstrip(" =")
            if value.startswith('"') and value.endswith('"') and len(value) > 1:
                value = value[1:-1]
            stack[-1][0][key] = value
    return root, sections


def main() -> None:
    root, services = parse_dump(run_doveconf(""))
    _, extra = parse_dump(run_doveconf(
        "passdb {\n driver = pam\n}\nuserdb {\n driver = passwd\n}\n"
        "namespace inbox {\n mailbox x {\n }\n}\n"))
    section_keys: dict[str, dict[str, str]] = {}

    def collect(items: list) -> None:
        for kind, _name, settings, children in items:
            merged = section_keys.setdefault(kind, {})
            for key, value in settings.items():
                merged.setdefault(key, value)
            collect(children)

    collect(services + extra)
    # The section's own key is settable too (Dovecot: SET_DEFLIST key fields).
    section_keys["unix_listener"].setdefault("path", "")
    section_keys["fifo_listener"].setdefault("path", "")
    section_keys["inet_listener"].setdefault("name", "")
    section_keys["service"].setdefault("name", "")
    section_keys["mailbox"].setdefault("name", "")
    section_keys["namespace"].setdefault("name", "")
    # The sample sections above carry sample values, not defaults.
    section_keys["passdb"]["driver"] = ""
    section_keys["userdb"]["driver"] = ""
    section_keys["inet_listener"]["port"] = "0"
    out = sys.stdout
    out.write('"""Every setting Dovecot 2.3.19 knows: name -> (type, default).\n\n'
              'Generated by `python -m maa_server.config.gen_table` from `doveconf -a`\n'
              '(dovecot-core 2.3.19.1); do not edit by hand."""\n\n')
    out.write("# Global settings (valid at top level and inside protocol/local/remote/local_name).\n")
    out.write("SETTINGS: dict[str, tuple[str, str]] = {\n")
    for key in sorted(root):
        out.write(f"    {key!r}: ({infer_type(key, root[key])!r}, {root[key]!r}),\n")
    out.write("}\n\n# Settings inside the named section kinds.\n")
    out.write("SECTION_SETTINGS: dict[str, dict[str, tuple[str, str]]] = {\n")
    for kind in sorted(section_keys):
        out.write(f"    {kind!r}: {{\n")
        for key in sorted(section_keys[kind]):
            value = section_keys[kind][key]
            if kind == "service" and key in ("executable", "protocol", "type", "chroot", "user"):
                value = ""  # per-service values, see SERVICE_DEFAULTS
            out.write(f"        {key!r}: ({infer_type(kind + '.' + key, value)!r}, {value!r}),\n")
        out.write("    },\n")
    out.write("}\n\n# The built-in services with their settings and listeners (kind, name, settings).\n")
    out.write("SERVICE_DEFAULTS: dict[str, tuple[dict[str, str], list[tuple[str, str, dict[str, str]]]]] = {\n")
    for kind, name, settings, children in services:
        if kind != "service":
            continue
        out.write(f"    {name!r}: (\n        {settings!r},\n        [\n")
        for ckind, cname, csettings, _ in children:
            out.write(f"            ({ckind!r}, {cname!r}, {csettings!r}),\n")
        out.write("        ],\n    ),\n")
    out.write("}\n")


if __name__ == "__main__":
    main()
