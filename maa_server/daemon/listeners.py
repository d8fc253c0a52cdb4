"""Which sockets to open: `protocols`, `listen` and the services'
inet_listener / unix_listener blocks (spec 1.8, 2.1;
Dovecot: src/master/master-settings.c, service-listen.c).

Sockets are bound here, synchronously, before the daemon forks or starts its
event loop, so that "address in use" or "permission denied" is reported on
the terminal that started it.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass
from typing import Any

from maa_server.auth.mail_access import resolve_gid, resolve_uid

# protocol in `protocols` -> (service that listens for it, handler kind)
PROTOCOL_SERVICES: dict[str, str] = {
    "imap": "imap-login",
    "pop3": "pop3-login",
    "lmtp": "lmtp",
    "sieve": "managesieve-login",
    "submission": "submission-login",
}


class ListenError(Exception):
    """A socket could not be opened; the message is one line for the admin."""


@dataclass(frozen=True)
class ListenerSpec:
    protocol: str  # imap, pop3, lmtp, ...
    service: str  # imap-login, ...
    name: str  # inet_listener / unix_listener name (imap, imaps, lmtp)
    address: str = ""  # inet: one address (`*` and `::` already mapped)
    port: int = 0
    ssl: bool = False  # implicit TLS
    path: str = ""  # unix listener: absolute path
    mode: int = 0o666
    uid: int = -1  # unix listener owner (`user =`), -1: unchanged
    gid: int = -1  # unix listener group (`group =`), -1: unchanged
    haproxy: bool = False

    @property
    def label(self) -> str:
        if self.path:
            return f"{self.protocol} unix:{self.path}"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.name} {host}:{self.port}{' (TLS)' if self.ssl else ''}"


def _yes(value: str) -> bool:
    return value.strip().lower() in ("yes", "y", "true", "1")


def split_addresses(value: str) -> list[str]:
    """`listen = *, ::` -> ["0.0.0.0", "::"]; Dovecot splits on commas and spaces."""
    out: list[str] = []
    for word in value.replace(",", " ").split():
        if word == "*":
            word = "0.0.0.0"
        elif word.startswith("[") and word.endswith("]"):
            word = word[1:-1]
        if word not in out:
            out.append(word)
    return out


def listener_specs(cfg: Any) -> list[ListenerSpec]:
    """Every listener to open for the configured protocols."""
    protocols = str(cfg.get("protocols") or "").split()
    listen = str(cfg.get("listen") or "")
    base_dir = str(cfg.get("base_dir") or "/run/dovecot")
    specs: list[ListenerSpec] = []
    services = cfg.services
    for protocol in protocols:
        service_name = PROTOCOL_SERVICES.get(protocol)
        if service_name is None or service_name not in services:
            continue
        for child in services[service_name].children:
            if child.kind == "inet_listener":
                port_text = child.get("port", "0").strip() or "0"
                try:
                    port = int(port_text)
                except ValueError as exc:
                    raise ListenError(f"service {service_name} inet_listener {child.name}: "
                                      f"invalid port '{port_text}'") from exc
                if port == 0:
                    continue  # Dovecot: port 0 disables the listener
                addresses = split_addresses(child.get("address", "") or listen)
                for address in addresses:
                    specs.append(ListenerSpec(protocol, service_name, child.name, address, port,
                                              ssl=_yes(child.get("ssl", "no")),
                                              haproxy=_yes(child.get("haproxy", "no"))))
            elif child.kind == "unix_listener" and protocol == "lmtp":
                # The listener's name is its path, relative to base_dir.
                path = child.get("path", "") or child.name
                if not os.path.isabs(path):
                    path = os.path.join(base_dir, path)
                path = os.path.abspath(path)  # a relative base_dir means the working directory
                mode_text = child.get("mode", "0666") or "0666"
                try:
                    mode = int(mode_text, 8)
                except ValueError as exc:
                    raise ListenError(f"service lmtp unix_listener {child.name}: invalid mode '{mode_text}'") from exc
                uid, gid = _socket_owner(service_name, path, child.get("user", ""), child.get("group", ""))
                specs.append(ListenerSpec(protocol, service_name, child.name, path=path, mode=mode,
                                          uid=uid, gid=gid))
    return specs


def _socket_owner(service: str, path: str, user: str, group: str) -> tuple[int, int]:
    """unix_listener `user` / `group` -> (uid, gid), -1 when unset. Unknown
    names are fatal, with Dovecot's text (src/master/master-settings.c)."""
    uid = gid = -1
    if user:
        resolved = resolve_uid(user)
        if resolved is None:
            raise ListenError(f"service({service}) User doesn't exist: {user} "
                              f"(See service {service} {{ unix_listener {path} {{ user }} }} setting)")
        uid = resolved
    if group:
        resolved = resolve_gid(group)
        if resolved is None:
            raise ListenError(f"service({service}) Group doesn't exist: {group} "
                              f"(See service {service} {{ unix_listener {path} {{ group }} }} setting)")
        gid = resolved
    return uid, gid


def bind(spec: ListenerSpec, backlog: int = 256) -> socket.socket | None:
    """Open the socket of one listener. Returns None for an IPv6 wildcard on a
    host without IPv6 (Dovecot skips `::` silently there too)."""
    if spec.path:
        return _bind_unix(spec, backlog)
    family = socket.AF_INET6 if ":" in spec.address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        if family == socket.AF_INET6 and exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            return None
        raise ListenError(f"socket({spec.address}) failed: {exc.strerror}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # `*, ::` binds both families on the same port.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((spec.address, spec.port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if family == socket.AF_INET6 and spec.address == "::" and exc.errno == errno.EADDRNOTAVAIL:
            return None
        # Dovecot's wording: "service(imap-login): listen(*, 143) failed: Address already in use"
        raise ListenError(f"service({spec.service}): listen({spec.address}, {spec.port}) failed: "
                          f"{exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def _bind_unix(spec: ListenerSpec, backlog: int) -> socket.socket:
    directory = os.path.dirname(spec.path)
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        if os.path.exists(spec.path):
            if not stat.S_ISSOCK(os.lstat(spec.path).st_mode):
                raise ListenError(f"service({spec.service}): {spec.path} exists and is not a socket")
            if _socket_in_use(spec.path):
                raise ListenError(f"service({spec.service}): Socket already exists: {spec.path}")
            os.unlink(spec.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(spec.path)
        os.chmod(spec.path, spec.mode)
        sock.listen(backlog)
    except OSError as exc:
        raise ListenError(f"service({spec.service}): listen({spec.path}) failed: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def _socket_in_use(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()
