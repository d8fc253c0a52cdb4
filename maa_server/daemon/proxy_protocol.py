"""HAProxy PROXY protocol v1 and v2, sans-IO (haproxy doc/proxy-protocol.txt;
Dovecot: src/lib-master/master-service-haproxy.c).

A listener with `haproxy = yes` expects this header before anything else;
it carries the real client and server addresses. Only peers in
`haproxy_trusted_networks` may send it, as in Dovecot.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PREFIX_LEN = 8  # enough to tell v1 ("PROXY ...") from v2 (signature)
V1_MAX_LINE = 107  # proxy-protocol.txt 2.1: the longest possible v1 line
V2_HEADER_LEN = 16


class ProxyHeaderError(ValueError):
    """The header is malformed; the connection is dropped."""


@dataclass(frozen=True)
class ProxiedAddresses:
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int


def version_of(prefix: bytes) -> int:
    """1 or 2 from the first PREFIX_LEN bytes."""
    if prefix.startswith(b"PROXY "):
        return 1
    if prefix == V2_SIGNATURE[:PREFIX_LEN]:
        return 2
    raise ProxyHeaderError("not a PROXY protocol header")


def parse_v1(line: bytes) -> ProxiedAddresses | None:
    """`PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\\r\\n`; None for UNKNOWN
    (a health check: keep the real peer addresses)."""
    if len(line) > V1_MAX_LINE or not line.endswith(b"\r\n"):
        raise ProxyHeaderError("v1 header too long or not CRLF-terminated")
    words = line[:-2].decode("ascii", "replace").split(" ")
    if len(words) >= 2 and words[0] == "PROXY" and words[1] == "UNKNOWN":
        return None
    if len(words) != 6 or words[0] != "PROXY" or words[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("bad v1 header")
    _, family, src, dst, sport, dport = words
    try:
        src_ip, dst_ip = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        ports = int(sport), int(dport)
    except ValueError as exc:
        raise ProxyHeaderError(f"bad v1 address: {exc}") from exc
    if {src_ip.version, dst_ip.version} != {4 if family == "TCP4" else 6}:
        raise ProxyHeaderError("v1 address family mismatch")
    # Ports are plain decimal 0-65535 (no sign, no leading zeros).
    if any(not 0 <= p <= 65535 or str(p) != text for p, text in zip(ports, (sport, dport), strict=True)):
        raise ProxyHeaderError("bad v1 port")
    return ProxiedAddresses(str(src_ip), ports[0], str(dst_ip), ports[1])


def v2_body_length(header: bytes) -> int:
    """From the 16-byte v2 header: how many bytes follow."""
    if len(header) != V2_HEADER_LEN or not header.startswith(V2_SIGNATURE):
        raise ProxyHeaderError("bad v2 signature")
    if header[12] >> 4 != 2:
        raise ProxyHeaderError("unsupported PROXY protocol version")
    return int(struct.unpack("!H", header[14:16])[0])


def parse_v2(header: bytes, body: bytes) -> ProxiedAddresses | None:
    """None for LOCAL (health checks) and for families other than TCP over
    IPv4/IPv6; TLVs after the addresses are ignored."""
    length = v2_body_length(header)
    if len(body) != length:
        raise ProxyHeaderError("v2 length mismatch")
    command = header[12] & 0x0F
    if command == 0:  # LOCAL
        return None
    if command != 1:
        raise ProxyHeaderError("unknown v2 command")
    family = header[13]
    if family == 0x11:  # TCP over IPv4
        if length < 12:
            raise ProxyHeaderError("short v2 IPv4 addresses")
        src = str(ipaddress.IPv4Address(body[0:4]))
        dst = str(ipaddress.IPv4Address(body[4:8]))
        sport, dport = struct.unpack("!HH", body[8:12])
    elif family == 0x21:  # TCP over IPv6
        if length < 36:
            raise ProxyHeaderError("short v2 IPv6 addresses")
        src = str(ipaddress.IPv6Address(body[0:16]))
        dst = str(ipaddress.IPv6Address(body[16:32]))
        sport, dport = struct.unpack("!HH", body[32:36])
    else:
        return None
    return ProxiedAddresses(src, int(sport), dst, int(dport))


def is_trusted(peer_ip: str, networks: str) -> bool:
    """haproxy_trusted_networks: space-separated IPs and CIDR networks."""
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for word in networks.replace(",", " ").split():
        try:
            if address in ipaddress.ip_network(word, strict=False):
                return True
        except ValueError:
            continue
    return False
