"""TLS contexts for the listeners, built from Dovecot's ssl_* settings
(spec 2.2; Dovecot: src/lib-ssl-iostream/iostream-openssl-context.c).

Each protocol has one *front* context, handed to its listeners and to
STARTTLS. Its SNI callback, which OpenSSL calls on every ClientHello (with
or without a server name), moves the handshake to the context that is
current *now*: the protocol's default or a `local_name` one. Reloading
(SIGHUP) therefore only swaps `TlsContexts.current`; listeners are not
re-created and sessions already running keep what they negotiated.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import ssl
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# ssl_min_protocol values (master-service-ssl-settings.c) -> Python versions.
# SSLv3 and TLSv1/1.1 are accepted as words; OpenSSL's security level may
# still refuse them, as it does for Dovecot.
MIN_PROTOCOLS: dict[str, ssl.TLSVersion] = {
    "ANY": ssl.TLSVersion.MINIMUM_SUPPORTED,
    "SSLv3": ssl.TLSVersion.MINIMUM_SUPPORTED,
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
    "LATEST": ssl.TLSVersion.TLSv1_3,
}

SSL_OPTION_FLAGS = {"compression", "no_compression", "no_ticket"}


class TlsConfigError(Exception):
    """A TLS setting that cannot be used; the message is one line for the admin."""


def _write_private_temp(data: str, directory: str) -> str:
    """ssl can only load certificates and keys from files; settings hold the
    PEM text (`<file` already read by the config), so it goes to a 0600
    temporary file that is removed right after loading."""
    fd, path = tempfile.mkstemp(prefix=".maa-tls-", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
        if not data.endswith("\n"):
            fh.write("\n")
    return path


def build_context(settings: Getter, where: str = "") -> ssl.SSLContext:
    """One server SSLContext from ssl_cert/ssl_key/ssl_key_password/ssl_ca/
    ssl_min_protocol/ssl_cipher_list/ssl_prefer_server_ciphers/ssl_dh/
    ssl_curve_list/ssl_options/ssl_verify_client_cert."""
    label = f" (local_name {where})" if where else ""
    cert = str(settings("ssl_cert") or "")
    key = str(settings("ssl_key") or "")
    # Dovecot's own messages (master-service-ssl-settings.c).
    if not cert.strip():
        raise TlsConfigError(f"ssl enabled, but ssl_cert not set{label}")
    if not key.strip():
        raise TlsConfigError(f"ssl enabled, but ssl_key not set{label}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tmpdir = tempfile.mkdtemp(prefix="maa-tls-")
    try:
        cert_path = _write_private_temp(cert, tmpdir)
        key_path = _write_private_temp(key, tmpdir)
        password = str(settings("ssl_key_password") or "") or None
        try:
            ctx.load_cert_chain(cert_path, key_path, password=password)
        except ssl.SSLError as exc:
            raise TlsConfigError(f"Can't load SSL certificate/key{label}: {exc.reason or exc}") from exc
        alt_cert = str(settings("ssl_alt_cert") or "")
        alt_key = str(settings("ssl_alt_key") or "")
        if alt_cert.strip() and alt_key.strip():
            # A second pair (e.g. ECDSA next to RSA): OpenSSL keeps one per key type.
            try:
                ctx.load_cert_chain(_write_private_temp(alt_cert, tmpdir),
                                    _write_private_temp(alt_key, tmpdir), password=password)
            except ssl.SSLError as exc:
                raise TlsConfigError(f"Can't load ssl_alt_cert/ssl_alt_key{label}: {exc.reason or exc}") from exc
        dh = str(settings("ssl_dh") or "")
        if dh.strip():
            try:
                ctx.load_dh_params(_write_private_temp(dh, tmpdir))
            except (ssl.SSLError, ValueError) as exc:
                raise TlsConfigError(f"Can't load ssl_dh{label}: {exc}") from exc
    finally:
        for name in os.listdir(tmpdir):
            os.unlink(os.path.join(tmpdir, name))
        os.rmdir(tmpdir)

    ca = str(settings("ssl_ca") or "")
    if ca.strip():
        try:
            ctx.load_verify_locations(cadata=ca)
        except ssl.SSLError as exc:
            raise TlsConfigError(f"Can't load ssl_ca{label}: {exc.reason or exc}") from exc
    if settings("ssl_verify_client_cert") is True:
        if not ca.strip():
            raise TlsConfigError("ssl_verify_client_cert set, but ssl_ca not")
        # Requested, not required: auth_ssl_require_client_cert decides later.
        ctx.verify_mode = ssl.CERT_OPTIONAL

    min_proto = str(settings("ssl_min_protocol") or "TLSv1.2")
    if min_proto not in MIN_PROTOCOLS:
        raise TlsConfigError(f"Unknown ssl_min_protocol setting '{min_proto}'")
    try:
        ctx.minimum_version = MIN_PROTOCOLS[min_proto]
    except ValueError:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ciphers = str(settings("ssl_cipher_list") or "")
    if ciphers:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise TlsConfigError(f"Can't set cipher list to '{ciphers}'") from exc
    curves = str(settings("ssl_curve_list") or "")
    if curves:
        # Python exposes one ECDH curve only; take the first of the list.
        first = curves.replace(",", ":").split(":")[0]
        try:
            ctx.set_ecdh_curve(first)
        except (ValueError, ssl.SSLError) as exc:
            raise TlsConfigError(f"Failed to set curve list to '{curves}'") from exc
    if settings("ssl_prefer_server_ciphers") is True:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    for flag in str(settings("ssl_options") or "").split():
        if flag not in SSL_OPTION_FLAGS:
            raise TlsConfigError(f"ssl_options: unknown flag: {flag}")
        if flag == "no_ticket":
            ctx.options |= ssl.OP_NO_TICKET
        elif flag == "compression":
            ctx.options &= ~ssl.OP_NO_COMPRESSION
    return ctx


Getter = Callable[[str], Any]


@dataclass
class TlsSet:
    """The contexts of one configuration generation (for one protocol)."""

    default: ssl.SSLContext
    by_name: dict[str, ssl.SSLContext] = field(default_factory=dict)
    make_front: Callable[[], ssl.SSLContext] = field(default=lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))

    def for_name(self, server_name: str | None) -> ssl.SSLContext:
        if server_name:
            name = server_name.lower().rstrip(".")
            if name in self.by_name:
                return self.by_name[name]
            for pattern, ctx in self.by_name.items():
                if "*" in pattern and fnmatch.fnmatchcase(name, pattern):
                    return ctx
        return self.default


# Settings that make a protocol's TLS differ from the global one
# (`protocol imap { ssl_cert = ... }`).
TLS_SETTINGS = ("ssl_cert", "ssl_key", "ssl_key_password", "ssl_alt_cert", "ssl_alt_key", "ssl_ca",
                "ssl_verify_client_cert", "ssl_min_protocol", "ssl_cipher_list", "ssl_curve_list",
                "ssl_prefer_server_ciphers", "ssl_dh", "ssl_options")


@dataclass
class TlsConfig:
    """One configuration generation's TLS: a TlsSet per protocol whose
    settings differ from the global ones, the global set for the others;
    protocols with `ssl = no` in their filter have none."""

    base: TlsSet
    by_protocol: dict[str, TlsSet | None] = field(default_factory=dict)

    def for_protocol(self, protocol: str) -> TlsSet | None:
        return self.by_protocol.get(protocol, self.base)


def build_tls_config(cfg: Any, protocols: list[str]) -> TlsConfig | None:
    """None when the global `ssl = no` (which also overrides filters, as in
    Dovecot). Raises TlsConfigError."""
    if str(cfg.get("ssl") or "yes") == "no":
        return None
    base = build_tls_set(cfg.get, cfg.local_names)
    config = TlsConfig(base)
    for protocol in protocols:
        if str(cfg.get("ssl", protocol=protocol) or "yes") == "no":
            config.by_protocol[protocol] = None
        elif any(cfg.get(n, protocol=protocol) != cfg.get(n) for n in TLS_SETTINGS):
            def get(name: str, local_name: str | None = None, protocol: str = protocol) -> Any:
                return cfg.get(name, protocol=protocol, local_name=local_name)
            config.by_protocol[protocol] = build_tls_set(get, cfg.local_names)
    return config


class TlsContexts:
    """The front contexts (one per protocol, made once) and the swappable
    current TlsConfig (see module doc).

    OpenSSL takes protocol versions and cipher options from the context a
    connection starts with; switching contexts in the SNI callback only
    changes the certificate. So a reload renews certificates and keys, and
    ssl_min_protocol / ssl_cipher_list / ssl_prefer_server_ciphers changes
    take effect at the next restart."""

    def __init__(self, current: TlsConfig) -> None:
        self.current = current
        self._fronts: dict[str, ssl.SSLContext] = {}

    def front(self, protocol: str) -> ssl.SSLContext | None:
        """The context to hand to a listener or to STARTTLS; None when the
        protocol has TLS disabled."""
        tls_set = self.current.for_protocol(protocol)
        if tls_set is None:
            return None
        front = self._fronts.get(protocol)
        if front is None:
            # A context of its own (not shared with another protocol), with
            # the options of the protocol's settings at start-up.
            front = tls_set.make_front()
            front.sni_callback = functools.partial(self._pick, protocol)
            self._fronts[protocol] = front
        return front

    def _pick(self, protocol: str, sslobj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        tls_set = self.current.for_protocol(protocol) or self.current.base
        sslobj.context = tls_set.for_name(server_name)
        try:
            # Sessions read it as Connection.sni_name (ClientInfo.local_name).
            sslobj.maa_server_name = server_name or ""
        except AttributeError:
            pass
        return None

    def swap(self, new: TlsConfig) -> None:
        self.current = new


def build_tls_set(get: Callable[..., Any], local_names: Mapping[str, Any]) -> TlsSet:
    """`get(name, local_name=None)` is Config.get; local_names from cfg.local_names."""
    default = build_context(lambda n: get(n))
    by_name: dict[str, ssl.SSLContext] = {}
    base_cert, base_key = get("ssl_cert"), get("ssl_key")
    for host in local_names:
        def lookup(n: str, host: str = host) -> Any:
            return get(n, local_name=host)
        if lookup("ssl_cert") == base_cert and lookup("ssl_key") == base_key:
            continue
        by_name[host.lower()] = build_context(lookup, host)
    return TlsSet(default=default, by_name=by_name, make_front=lambda: build_context(lambda n: get(n)))
