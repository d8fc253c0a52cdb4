"""Dovecot `%` variable expansion for auth templates (src/lib/var-expand.c).

Used for `auth_username_format`, passwd-file paths, `default_fields`,
`override_fields`, static `args` and extra field values. Syntax:
`%[-][0][<offset>.][-][0]<width>][modifiers](<key>|{<name>[:<default>]})`.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping

# Short keys of the auth request (auth-request-var-expand.c).
SHORT_KEYS = {
    "u": "user", "n": "username", "d": "domain", "s": "service", "h": "home",
    "l": "lip", "r": "rip", "a": "lport", "b": "rport", "p": "pid", "w": "password",
    "m": "mech", "c": "secured", "k": "cert", "!": "passdb_num", "i": "uid",
}
MODIFIERS = "LUEXRHNMDT"


class ExpansionError(ValueError):
    """Unknown variable or malformed template."""


def user_parts(user: str) -> dict[str, str]:
    """user / username / domain as %u %n %d see them."""
    name, at, domain = user.partition("@")
    return {"user": user, "username": name, "domain": domain if at else ""}


def _modify(value: str, mods: str, width: int) -> str:
    for mod in mods:
        if mod == "L":
            value = value.lower()
        elif mod == "U":
            value = value.upper()
        elif mod == "E":
            value = value.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")
        elif mod == "X":
            value = format(int(value or "0"), "x")
        elif mod == "R":
            value = value[::-1]
        elif mod == "H":
            # Old 32-bit string hash (str_hash in src/lib/strfuncs.c).
            h = 0
            for ch in value.encode():
                h = (h << 4) + ch
                g = h & 0xF0000000
                if g:
                    h ^= g >> 24
                    h ^= g
                h &= 0xFFFFFFFF
            value = format(h % width if width else h, "x")
        elif mod == "N":
            # m_str_newhash(): the first 8 MD5 bytes as a big-endian uint64,
            # modulo the width, printed as a 32-bit unsigned hex number.
            digest = int.from_bytes(hashlib.md5(value.encode()).digest()[:8], "big")
            value = format((digest % width if width else digest) & 0xFFFFFFFF, "x")
        elif mod == "M":
            value = hashlib.md5(value.encode()).hexdigest()
        elif mod == "D":
            value = ",dc=".join(value.split("."))
        elif mod == "T":
            value = value.rstrip()
    return value


def _lookup(name: str, variables: Mapping[str, str]) -> str:
    if name.startswith("env:"):
        return os.environ.get(name[4:], "")
    if name == "hostname":
        return socket.gethostname()
    if name == "pid" and "pid" not in variables:
        return str(os.getpid())
    key, colon, default = name.partition(":")
    for prefix in ("passdb:", "userdb:"):
        if name.startswith(prefix):
            field, _, dflt = name[len(prefix):].partition(":")
            return variables.get(prefix + field, dflt)
    if colon and key.partition(";")[0] in HASH_METHODS:
        return _hash(key, default, variables)
    if key in variables:
        return variables[key] or (default if colon else "")
    if colon:
        return default
    raise ExpansionError(f"Unknown variable '%{{{name}}}'")


HASH_METHODS = ("md4", "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3-256", "sha3-512")


def _hash(spec: str, field: str, variables: Mapping[str, str]) -> str:
    """`%{sha256;rounds=2;truncate=32;salt=x;format=base64:user}` (var-expand.c
    var_expand_hash): hash(salt + value), `rounds` times; keep the leading
    `truncate` bits; print as hex (default), hexuc or base64."""
    method, *options = spec.split(";")
    opts = dict(opt.partition("=")[::2] for opt in options)
    unknown = set(opts) - {"rounds", "truncate", "salt", "format"}
    if unknown:
        raise ExpansionError(f"Unsupported hash option '{min(unknown)}'")
    try:
        rounds = int(opts.get("rounds", "1") or "1")
        bits = int(opts.get("truncate", "0") or "0")
    except ValueError as exc:
        raise ExpansionError(f"Invalid hash option in %{{{spec}:{field}}}") from exc
    salt = expand(opts.get("salt", ""), variables).encode()
    if field not in variables and field not in SHORT_KEYS.values():
        raise ExpansionError(f"Unknown variable '{field}'")
    data = variables.get(field, "").encode("utf-8", "surrogateescape")
    algo = method.replace("-", "_")
    for _ in range(max(rounds, 1)):
        if method == "md4":
            from maa_server.auth.digests import md4
            data = md4(salt + data)
        else:
            data = hashlib.new(algo, salt + data).digest()
    if bits and bits < len(data) * 8:
        nbytes = (bits + 7) // 8
        value = int.from_bytes(data[:nbytes], "big") >> (nbytes * 8 - bits)
        data = value.to_bytes(nbytes, "big")
    fmt = opts.get("format", "hex")
    if fmt == "base64":
        import base64
        return base64.b64encode(data).decode()
    return data.hex().upper() if fmt == "hexuc" else data.hex()


def expand(template: str, variables: Mapping[str, str]) -> str:
    """Expand `template`; raises ExpansionError for unknown variables."""
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= n:
            out.append("%")
            break
        if template[i] == "%":
            out.append("%")
            i += 1
            continue
        # [-][0]offset[.[-][0]width] -- the first number is a width unless a dot follows.
        numbers: list[tuple[int, bool]] = []
        while True:
            neg = template.startswith("-", i)
            if neg:
                i += 1
            zero = template.startswith("0", i)
            j = i
            while j < n and template[j].isdigit():
                j += 1
            if j == i and not neg:
                break
            numbers.append(((-1 if neg else 1) * int(template[i:j] or "0"), zero))
            i = j
            if template.startswith(".", i):
                i += 1
                continue
            break
        offset, width, zero_pad = 0, 0, False
        if len(numbers) == 1:
            width, zero_pad = numbers[0]
        elif len(numbers) >= 2:
            offset = numbers[0][0]
            width, zero_pad = numbers[1]
        mods = ""
        while i < n and template[i] in MODIFIERS:
            # A modifier letter followed by nothing usable is the key itself
            # (`%d` vs `%D?`): keys win only when no further key follows.
            mods += template[i]
            i += 1
        if i < n and template[i] == "{":
            end = template.find("}", i)
            if end < 0:
                raise ExpansionError("Missing '}' in template")
            value = _lookup(template[i + 1:end], variables)
            i = end + 1
        else:
            if i >= n:
                # `%L` at the end: the last modifier letter was really the key.
                raise ExpansionError("Incomplete variable at end of template")
            key = template[i]
            i += 1
            if key not in SHORT_KEYS:
                raise ExpansionError(f"Unknown variable '%{key}'")
            long = SHORT_KEYS[key]
            value = variables.get(long, str(os.getpid()) if long == "pid" else "")
        value = _modify(value, mods, width if mods and mods[-1] in "HN" else 0)
        if mods and mods[-1] in "HN":
            # width was the modulus; the offset is a zero-padding width
            value = value.rjust(max(offset, 0), "0")
        elif zero_pad and width > 0:
            value = value.rjust(width, "0")
        elif offset or width:
            if offset < 0:
                offset = max(len(value) + offset, 0)
            value = value[offset:]
            if width > 0 or width < 0:
                value = value[:width]
        out.append(value)
    return "".join(out)
