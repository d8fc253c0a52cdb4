"""Extra fields: `key=value key2=value2` lists, their %-expansion, filters.

Used for passwd-file extra fields, static args, default_fields and
override_fields (src/auth/auth-request-fields.c, db-passwd-file.c).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping

from maa_server.auth.varexpand import expand


def parse_fields(text: str) -> list[tuple[str, str]]:
    """Split on spaces; a field without `=` has an empty value. There is no
    escaping: a space always starts a new field (observed with `reason=a\\ b`)."""
    out: list[tuple[str, str]] = []
    for word in text.split():
        key, _, value = word.partition("=")
        if key:
            out.append((key, value))
    return out


def expand_fields(pairs: list[tuple[str, str]], variables: Mapping[str, str]) -> dict[str, str]:
    return {key: expand(value, variables) for key, value in pairs}


def apply_fields(target: dict[str, str], new: Mapping[str, str]) -> None:
    """Merge with the `:protected` (set only if unset) and `:remove` suffixes."""
    for key, value in new.items():
        if key.endswith(":protected"):
            target.setdefault(key[:-10], value)
        elif key.endswith(":remove"):
            target.pop(key[:-7], None)
        else:
            target[key] = value


def split_list(value: str) -> list[str]:
    return [w for w in value.replace(",", " ").split() if w]


def username_filter_matches(patterns: str, user: str) -> bool:
    """`*@example.com !user@example.com`: no exclusion matches and (no
    inclusions or one matches). Patterns use `*` and `?` only."""
    includes = []
    for pattern in split_list(patterns):
        if pattern.startswith("!"):
            if fnmatch.fnmatchcase(user, pattern[1:]):
                return False
        else:
            includes.append(pattern)
    return not includes or any(fnmatch.fnmatchcase(user, p) for p in includes)


def mechanisms_match(mechanisms: str, mech: str) -> bool:
    """passdb `mechanisms`: `none` matches non-authenticating lookups (mech "")."""
    wanted = [m.upper() for m in split_list(mechanisms)]
    if not wanted:
        return True
    return (mech or "NONE").upper() in wanted


def _normalise_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def ip_in_networks(ip_text: str, networks: str) -> bool:
    """`allow_nets` / `login_trusted_networks` matching. `local` matches a
    connection without an IP (UNIX socket)."""
    ip = _normalise_ip(ip_text) if ip_text else None
    for net_text in split_list(networks):
        if net_text == "local":
            if ip is None:
                return True
            continue
        if ip is None:
            continue
        try:
            net = ipaddress.ip_network(net_text, strict=False)
        except ValueError:
            host = _normalise_ip(net_text)
            if host is not None and host == ip:
                return True
            continue
        if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped and net.prefixlen >= 96:
            net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
        if ip.version == net.version and ip in net:
            return True
    return False


def is_loopback(ip_text: str) -> bool:
    ip = _normalise_ip(ip_text) if ip_text else None
    return ip is not None and ip.is_loopback
