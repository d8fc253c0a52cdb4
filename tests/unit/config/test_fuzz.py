"""Random input gives a Config or a ConfigError, never another exception."""

from __future__ import annotations

import socket
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maa_server.config import Config, ConfigError, parse_config_text
from maa_server.config.dump import dump_config

TOKENS = ["ssl", "=", "yes", "no", "maybe", "{", "}", "passdb", "userdb", "namespace", "inbox", "mailbox",
          "service", "imap-login", "inet_listener", "imap", "port", "143", "abc", "protocol", "!pop3",
          "local", "remote", "127.0.0.1", "10.0.0.0/8", "::1/200", "local_name", "*.x.org", "plugin",
          "dict", "sieve", "$sieve", "$protocols", "protocols", "mail_plugins", "$mail_plugins",
          "$ENV:HOME", "<", "<nosuch", "!include", "!include_try", "nosuch*.conf", "#", "'", '"', "\\",
          "imap_max_line_length", "64k", "auth_failure_delay", "5", "2 secs", "auth_verbose",
          "login_greeting", "driver", "args", "mode", "0666", "auto", "subscribe", "x#y", " ", "\t"]
line = st.lists(st.sampled_from(TOKENS), max_size=6).map(" ".join)
text = st.one_of(st.lists(line, max_size=12).map("\n".join), st.text(max_size=200))


class NoFilesLoader:
    def read_text(self, path: str) -> str:
        raise FileNotFoundError(2, "No such file or directory", path)

    def glob(self, pattern: str) -> list[str]:
        return []


def no_dns(*args: object, **kwargs: object) -> object:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text)
def test_random_input_gives_config_or_config_error(source: str) -> None:
    with mock.patch("socket.getaddrinfo", no_dns):
        try:
            cfg = parse_config_text(source, "/fuzz/dovecot.conf", loader=NoFilesLoader())
        except ConfigError as exc:
            assert str(exc).startswith("Error in configuration file /fuzz/dovecot.conf")
            assert "\n" not in str(exc)
            return
    assert isinstance(cfg, Config)
    cfg.settings(protocol="imap", local_ip="127.0.0.1", remote_ip="10.1.1.1", local_name="a.x.org")
    dump_config(cfg, non_default=True)
