"""Filters (protocol / local / remote / local_name), their nesting rules and
precedence, and the built-in services merged with the file (spec 1.7, 1.8)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from maa_server.config import ConfigError, parse_config_text
from maa_server.config.table import SETTINGS
from maa_server.config.values import format_value

FILTERED = """\
login_greeting = global greet
imap_max_line_length = 64k
disable_plaintext_auth = yes
protocol imap {
  imap_max_line_length = 96k
}
protocol !pop3 {
  mail_max_userip_connections = 20
}
local 127.0.0.1 {
  login_greeting = local greet
  protocol imap {
    imap_idle_notify_interval = 5 mins
  }
}
local 127.0.0.0/8 {
  login_greeting = loopback net greet
  mail_debug = yes
}
remote 10.0.0.0/8 {
  disable_plaintext_auth = no
}
local_name mail.example.org {
  ssl_cipher_list = HIGH
}
local_name *.example.net {
  ssl_min_protocol = TLSv1.3
}
"""


@pytest.fixture(scope="module")
def cfg():
    config = parse_config_text(FILTERED, "/etc/dovecot/dovecot.conf")
    assert config.warnings == []
    return config


def test_protocol_filter(cfg) -> None:
    assert cfg.get("imap_max_line_length") == 65536
    assert cfg.get("imap_max_line_length", protocol="imap") == 96 * 1024
    assert cfg.get("imap_max_line_length", protocol="pop3") == 65536


def test_negated_protocol_filter(cfg) -> None:
    assert cfg.get("mail_max_userip_connections", protocol="imap") == 20
    assert cfg.get("mail_max_userip_connections", protocol="pop3") == 10
    assert cfg.get("mail_max_userip_connections") == 10  # no protocol asked: protocol filters don't apply


def test_local_filters_most_specific_wins(cfg) -> None:
    # observed with doveconf -f service=imap -f local=127.0.0.1 -f remote=10.1.2.3
    settings = cfg.settings(protocol="imap", local_ip="127.0.0.1", remote_ip="10.1.2.3")
    assert settings["login_greeting"] == "local greet"          # /32 beats /8
    assert settings["imap_max_line_length"] == 96 * 1024
    assert settings["imap_idle_notify_interval"] == 300       # local { protocol imap {} }
    assert settings["disable_plaintext_auth"] is False
    assert settings["mail_debug"] is True                      # only the /8 filter sets it
    assert cfg.get("login_greeting", local_ip="127.0.0.2") == "loopback net greet"
    assert cfg.get("login_greeting", local_ip="192.0.2.1") == "global greet"
    assert cfg.get("login_greeting", local_ip="::ffff:127.0.0.1") == "local greet"
    assert cfg.get("disable_plaintext_auth", remote_ip="192.0.2.1") is True
    assert cfg.get("login_greeting", local_ip="not an ip") == "global greet"


def test_local_name_filter(cfg) -> None:
    assert cfg.get("ssl_cipher_list", local_name="mail.example.org") == "HIGH"
    assert cfg.get("ssl_cipher_list", local_name="MAIL.example.org") == "HIGH"
    assert cfg.get("ssl_cipher_list", local_name="other.example.org").startswith("ALL:")  # type: ignore[union-attr]
    assert cfg.get("ssl_min_protocol", local_name="imap.example.net") == "TLSv1.3"
    assert cfg.get("ssl_min_protocol", local_name="example.net") == "TLSv1.2"
    # local_name and local together
    assert cfg.get("ssl_cipher_list", local_ip="127.0.0.1", local_name="mail.example.org") == "HIGH"
    assert cfg.get("login_greeting", local_ip="127.0.0.1", local_name="mail.example.org") == "local greet"
    assert set(cfg.local_names) == {"mail.example.org", "*.example.net"}
    assert cfg.local_names["mail.example.org"]["ssl_cipher_list"] == "HIGH"


def test_identical_filters_merge() -> None:
    cfg = parse_config_text("protocol imap {\n  imap_id_log = *\n}\nprotocol imap {\n  imap_metadata = yes\n}\n")
    assert len(cfg.scopes) == 1
    assert cfg.get("imap_id_log", protocol="imap") == "*"
    assert cfg.get("imap_metadata", protocol="imap") is True


def test_multiple_local_names_in_quotes() -> None:
    cfg = parse_config_text('local_name "a.org b.org" {\n  login_greeting = ab\n}\n')
    assert cfg.get("login_greeting", local_name="b.org") == "ab"


@pytest.mark.parametrize(("text", "message"), [
    ("protocol imap {\n protocol pop3 {\n }\n}\n", "Nested protocol { protocol { .. } } block not allowed"),
    ("protocol imap {\n  local 1.2.3.4 {\n  }\n}\n",
     "protocol { local { .. } } not allowed (use local { protocol { .. } } instead)"),
    ("remote 1.2.3.4 {\n  local 1.2.3.4 {\n  }\n}\n",
     "remote { local { .. } } not allowed (use local { remote { .. } } instead)"),
    ("local_name x.org {\n  local 1.2.3.4 {\n  }\n}\n",
     "local_name { local { .. } } not allowed (use local { local_name { .. } } instead)"),
    ("remote 1.2.3.4 {\n  local_name x.org {\n  }\n}\n",
     "remote { local_name { .. } } not allowed (use local_name { remote { .. } } instead)"),
    ("local 1.2.3.0/24 {\n  local 1.2.4.4 {\n  }\n}\n",
     "local net1 { local net2 { .. } } requires net2 to be inside net1"),
    ("remote 1.2.3.4 {\n  auth_verbose = yes\n}\n",
     "Auth settings not supported inside local/remote blocks: auth_verbose"),
    ("local 1.2.3.4 {\n  passdb {\n  }\n}\n", "Auth settings not supported inside local/remote blocks: passdb"),
    ("local 1.2.3.4 {\n  first_valid_uid = 1\n}\n",
     "Auth settings not supported inside local/remote blocks: first_valid_uid"),
    ("remote 1.2.3.4 {\n  base_dir = /x\n}\n", "Auth settings not supported inside local/remote blocks: base_dir"),
    ("remote 1.2.3.4/33 {\n}\n", "Invalid network mask: 1.2.3.4/33"),
])
def test_nesting_errors(tmp_path: Path, text: str, message: str) -> None:
    main = tmp_path / "x.conf"
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, main)
    assert str(err.value) == f"Error in configuration file {main} line 2: {message}" or \
        str(err.value) == f"Error in configuration file {main} line 1: {message}"
    assert err.value.message == message


def test_allowed_nesting_and_login_setting_in_remote() -> None:
    cfg = parse_config_text("local 10.0.0.0/8 {\n  local 10.1.0.0/16 {\n    remote 192.168.0.0/16 {\n"
                            "      protocol imap {\n        imap_metadata = yes\n      }\n    }\n  }\n}\n"
                            "remote 10.0.0.0/8 {\n  disable_plaintext_auth = no\n  auth_socket_path = x\n"
                            "  mail_max_userip_connections = 3\n}\n")
    assert cfg.get("imap_metadata", protocol="imap", local_ip="10.1.2.3", remote_ip="192.168.1.1") is True
    assert cfg.get("imap_metadata", protocol="imap", local_ip="10.2.2.3", remote_ip="192.168.1.1") is False


def test_passdb_inside_protocol_is_allowed() -> None:
    cfg = parse_config_text("passdb {\n  driver = pam\n}\nprotocol lmtp {\n  passdb {\n    driver = static\n  }\n}\n")
    assert [p.get("driver") for p in cfg.passdbs] == ["pam"]
    assert [p.get("driver") for p in cfg.passdbs_for("lmtp")] == ["pam", "static"]


# -- services ---------------------------------------------------------------------------

def listeners(cfg, service: str) -> dict[tuple[str, str], dict[str, str]]:
    return {(c.kind, c.name): c.settings for c in cfg.services[service].children}


def test_default_services_and_listeners() -> None:
    cfg = parse_config_text("")
    imap = listeners(cfg, "imap-login")
    assert (imap[("inet_listener", "imap")]["port"], imap[("inet_listener", "imap")]["ssl"]) == ("143", "no")
    assert (imap[("inet_listener", "imaps")]["port"], imap[("inet_listener", "imaps")]["ssl"]) == ("993", "yes")
    pop3 = listeners(cfg, "pop3-login")
    assert pop3[("inet_listener", "pop3")]["port"] == "110"
    assert (pop3[("inet_listener", "pop3s")]["port"], pop3[("inet_listener", "pop3s")]["ssl"]) == ("995", "yes")
    assert listeners(cfg, "lmtp")[("unix_listener", "lmtp")]["mode"] == "0666"
    assert listeners(cfg, "managesieve-login")[("inet_listener", "sieve")]["port"] == "4190"
    assert listeners(cfg, "submission-login")[("inet_listener", "submission")]["port"] == "587"
    assert ("unix_listener", "auth-userdb") in listeners(cfg, "auth")


def test_service_blocks_merge_with_defaults() -> None:
    # observed: two blocks, one sets the port, the other the address -> one listener with both
    cfg = parse_config_text("service imap-login {\n  inet_listener imap {\n    port = 1143\n  }\n}\n"
                            "service imap-login {\n  inet_listener imap {\n    address = 127.0.0.1\n  }\n"
                            "  inet_listener imaps {\n    port = 0\n  }\n  process_min_avail = 2\n}\n"
                            "service lmtp {\n  inet_listener lmtp {\n    address = 127.0.0.1\n    port = 24\n  }\n}\n")
    imap = listeners(cfg, "imap-login")
    assert imap[("inet_listener", "imap")] == {"address": "127.0.0.1", "haproxy": "no", "port": "1143",
                                               "reuse_port": "no", "ssl": "no"}
    assert imap[("inet_listener", "imaps")]["port"] == "0"  # disabled
    assert imap[("inet_listener", "imaps")]["ssl"] == "yes"
    assert cfg.services["imap-login"].get("process_min_avail") == "2"
    assert cfg.services["imap-login"].get("executable") == "imap-login"
    lmtp = listeners(cfg, "lmtp")
    assert lmtp[("inet_listener", "lmtp")]["port"] == "24"
    assert ("unix_listener", "lmtp") in lmtp


def test_section_typed_values() -> None:
    cfg = parse_config_text("namespace inbox {\n  inbox = yes\n  mailbox Trash {\n    autoexpunge = 30d\n  }\n}\n")
    inbox = cfg.namespaces[0]
    assert inbox.typed("inbox") is True
    assert inbox.typed("hidden") is False
    assert inbox.typed("type") == "private"
    assert inbox.children[0].typed("autoexpunge") == 30 * 86400
    assert cfg.services["imap-login"].children[0].typed("port") == 143


def test_settings_cache_is_per_filter_set(cfg) -> None:
    first = cfg.settings(remote_ip="192.0.2.1")
    assert cfg.settings(remote_ip="192.0.2.2") is first
    assert cfg.settings(remote_ip="10.0.0.1") is not first


def test_equally_specific_filters_first_in_file_wins() -> None:
    # observed with doveconf -f service=imap (both orders)
    first = parse_config_text("protocol imap {\n  imap_metadata = yes\n}\nprotocol !pop3 {\n  imap_metadata = no\n}\n")
    assert first.get("imap_metadata", protocol="imap") is True
    second = parse_config_text("protocol !pop3 {\n  imap_metadata = no\n}\nprotocol imap {\n  imap_metadata = yes\n}\n")
    assert second.get("imap_metadata", protocol="imap") is False
    # merged blocks: the later block's value replaces the earlier one inside the same filter
    nets = parse_config_text("remote 10.0.0.0/8 {\n  login_greeting = a\n}\nremote 10.1.0.0/16 {\n"
                             "  login_greeting = b\n}\nremote 10.0.0.0/8 {\n  login_greeting = c\n}\n")
    assert nets.get("login_greeting", remote_ip="10.1.1.1") == "b"
    assert nets.get("login_greeting", remote_ip="10.2.1.1") == "c"


def test_conflicts_between_filters_are_reported() -> None:
    # Observed with doveconf 2.3.19: both are "Conflict in setting ..." errors on lookup.
    nested = parse_config_text("protocol imap {\n  imap_max_line_length = 96k\n}\nlocal 127.0.0.1 {\n"
                               "  protocol imap {\n    imap_max_line_length = 128k\n  }\n}\n", "/x.conf")
    assert nested.warnings == [("Conflict in setting imap_max_line_length found from filter at /x.conf:1 "
                               "(the most specific filter's value is used)")]
    assert nested.get("imap_max_line_length", protocol="imap", local_ip="127.0.0.1") == 128 * 1024
    crossed = parse_config_text("local 10.0.0.0/8 {\n  login_greeting = a\n}\n"
                                "remote 192.168.0.0/16 {\n  login_greeting = b\n}\n", "/y.conf")
    assert crossed.warnings == [("Conflict in setting login_greeting found from filter at /y.conf:4 "
                                "(the most specific filter's value is used)")]
    # observed: local vs protocol conflicts too; a global value and filters that
    # never match together do not
    mixed = parse_config_text("login_greeting = g\nlocal 10.0.0.0/8 {\n  login_greeting = a\n}\n"
                              "local 192.168.0.0/16 {\n  login_greeting = b\n}\nprotocol imap {\n"
                              "  login_greeting = c\n}\n", "/z.conf")
    assert mixed.warnings == [("Conflict in setting login_greeting found from filter at /z.conf:8 "
                              "(the most specific filter's value is used)")]
    clean = parse_config_text("login_greeting = g\nlocal 10.0.0.0/8 {\n  login_greeting = a\n}\n"
                              "local 10.1.0.0/16 {\n  login_greeting = b\n}\nprotocol imap {\n"
                              "  imap_metadata = yes\n}\nprotocol pop3 {\n  imap_metadata = no\n}\n")
    assert clean.warnings == []


def test_filter_host_names_are_resolved_at_parse_time(tmp_path: Path) -> None:
    import socket
    from unittest import mock

    def fake_getaddrinfo(host: str, *args: object, **kwargs: object) -> list:
        if host == "mail.internal":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.10", 0))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with mock.patch("socket.getaddrinfo", fake_getaddrinfo):
        cfg = parse_config_text("local mail.internal {\n  login_greeting = by name\n}\n")
        with pytest.raises(ConfigError) as err:
            parse_config_text("\nremote nosuch.invalid {\n}\n", tmp_path / "x.conf")
    assert cfg.get("login_greeting", local_ip="192.0.2.10") == "by name"
    assert str(err.value) == (f"Error in configuration file {tmp_path / 'x.conf'} line 2: "
                              "gethostbyname(nosuch.invalid) failed: Name or service not known")


def test_lenient_cases_doveconf_accepts() -> None:
    cfg = parse_config_text("local_name x.org {\n  local_name y.org {\n    login_greeting = y\n  }\n}\n"
                            "protocol {\n  imap_metadata = yes\n}\n")
    assert cfg.get("login_greeting", local_name="y.org") == "y"
    assert cfg.get("imap_metadata") is True


@pytest.mark.skipif(shutil.which("doveconf") is None, reason="doveconf not installed")
@pytest.mark.parametrize(("flags", "query"), [
    ([], {}),
    (["-f", "service=imap"], {"protocol": "imap"}),
    (["-f", "service=pop3"], {"protocol": "pop3"}),
    (["-f", "service=imap", "-f", "local=127.0.0.1", "-f", "remote=10.1.2.3"],
     {"protocol": "imap", "local_ip": "127.0.0.1", "remote_ip": "10.1.2.3"}),
    (["-f", "local=127.0.0.2"], {"local_ip": "127.0.0.2"}),
    (["-f", "remote=192.0.2.1"], {"remote_ip": "192.0.2.1"}),
])
def test_filter_lookups_match_doveconf(tmp_path: Path, flags: list[str], query: dict[str, str]) -> None:
    path = tmp_path / "dovecot.conf"
    path.write_text(FILTERED)
    keys = ["login_greeting", "imap_max_line_length", "mail_max_userip_connections",
            "disable_plaintext_auth", "mail_debug", "imap_idle_notify_interval"]
    theirs = subprocess.run(["doveconf", "-c", str(path), *flags, *keys], capture_output=True, text=True,
                            check=True).stdout
    settings = parse_config_text(FILTERED, path).settings(**query)
    ours = "".join(f"{key} = {format_value(SETTINGS[key][0], settings[key])}\n" for key in keys)
    assert ours == theirs
