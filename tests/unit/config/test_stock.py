"""The stock Debian tree and the tutorial blocks parse unchanged; `maa-adm config -n`
prints what the real `doveconf -n` prints for the same files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from maa_server.cli.adm import main as adm_main
from maa_server.config import ConfigError, load_config
from maa_server.config.parser import FileSystemLoader

STOCK = Path("/etc/dovecot/dovecot.conf")
DOVECONF = shutil.which("doveconf") or ("/usr/bin/doveconf" if Path("/usr/bin/doveconf").exists() else None)
FAKE_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

TUTORIAL_AUTH = """\
userdb {
  # <doc/wiki/AuthDatabase.Passwd.txt>
  driver = passwd
  # [blocking=no]
  args = blocking=no
}
passdb {
  driver = passwd-file
  args = scheme=blf-crypt /usr/local/etc/passwd.replica
  default_fields =
  override_fields =
  deny = no
  master = no
  pass = no
  skip = never
  mechanisms =
  username_filter =
  result_failure = continue
  result_internalfail = continue
  result_success = return-ok
  # v2.2.24+
  auth_verbose = default
}
"""
TUTORIAL_MAIL = "mail_location = maildir:~/Maildir:LAYOUT=fs\n"
TUTORIAL_SSL = """\
ssl = yes
ssl_cert = </etc/dovecot/private/dovecot.pem
ssl_key = </etc/dovecot/private/dovecot.key
"""


class PrivateKeysLoader(FileSystemLoader):
    """The real files, except that the certificate/key under /etc/dovecot/private
    (created by dovecot-core's postinst on a real host, absent in containers)
    read as a stub when missing."""

    def read_text(self, path: str) -> str:
        if path.startswith("/etc/dovecot/private/") and not os.path.exists(path):
            return FAKE_PEM
        return super().read_text(path)


needs_stock = pytest.mark.skipif(not STOCK.exists(), reason="Debian dovecot-core not installed")
needs_doveconf = pytest.mark.skipif(DOVECONF is None or not STOCK.exists(), reason="doveconf not installed")


def doveconf_n(path: Path) -> list[str]:
    out = subprocess.run([str(DOVECONF), "-n", "-c", str(path)], capture_output=True, text=True,
                         check=True).stdout
    # The header comments and Pigeonhole's capability lines (asked from
    # managesieve-login at dump time) are not configuration.
    return [line for line in out.splitlines()
            if not line.startswith("#") and not line.startswith("managesieve_")]


def our_n(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert adm_main(["-c", str(path), "config", "-n"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"# maa-server {__import__('maa_server').__version__}: {path}"
    return lines[1:]


@needs_stock
def test_stock_debian_tree_parses_unchanged() -> None:
    cfg = load_config(STOCK, loader=PrivateKeysLoader())
    assert cfg.get("protocols").split() == ["imap", "lmtp", "sieve", "pop3"]  # type: ignore[union-attr]
    assert cfg.get("mail_location") == "mbox:~/mail:INBOX=/var/mail/%u"
    assert cfg.get("ssl") == "yes"
    assert cfg.get("ssl_cert").startswith("-----BEGIN")  # type: ignore[union-attr]
    assert cfg.get("ssl_dh").startswith("-----BEGIN DH PARAMETERS")  # type: ignore[union-attr]
    assert cfg.get("auth_mechanisms") == "plain"
    assert [p.get("driver") for p in cfg.passdbs] == ["pam"]
    assert [u.get("driver") for u in cfg.userdbs] == ["passwd"]
    inbox = cfg.namespaces[0]
    assert inbox.get("inbox") == "yes"
    assert {m.name: m.get("special_use") for m in inbox.children} == {
        "Drafts": "\\Drafts", "Junk": "\\Junk", "Trash": "\\Trash", "Sent": "\\Sent", "Sent Messages": "\\Sent"}
    assert cfg.plugin()["sieve"] == "file:~/sieve;active=~/.dovecot.sieve"
    assert listeners_ports(cfg, "imap-login") == {"imap": "143", "imaps": "993"}


def listeners_ports(cfg, service: str) -> dict[str, str]:
    return {c.name: c.get("port") for c in cfg.services[service].children if c.kind == "inet_listener"}


@needs_stock
def test_stock_tree_copied_parses_without_reading_files(tmp_path: Path) -> None:
    shutil.copytree(STOCK.parent, tmp_path / "dovecot", ignore=shutil.ignore_patterns("private"))
    cfg = load_config(tmp_path / "dovecot/dovecot.conf", read_files=False)
    assert cfg.passdbs[0].file == str(tmp_path / "dovecot/conf.d/auth-system.conf.ext")
    # the running server reads `<file`: a missing certificate is an error naming it
    with pytest.raises(ConfigError, match=r"ssl_cert: Can't open file /etc/dovecot/private/dovecot.pem"):
        load_config(tmp_path / "dovecot/dovecot.conf", loader=MissingPrivateLoader())


class MissingPrivateLoader(FileSystemLoader):
    def read_text(self, path: str) -> str:
        if path.startswith("/etc/dovecot/private/"):
            raise FileNotFoundError(2, "No such file or directory", path)
        return super().read_text(path)


def tutorial_tree(root: Path) -> Path:
    (root / "conf.d").mkdir(parents=True)
    (root / "conf.d/auth-system.conf.ext").write_text(TUTORIAL_AUTH)
    (root / "conf.d/10-auth.conf").write_text("auth_mechanisms = plain\n!include auth-system.conf.ext\n")
    (root / "conf.d/10-mail.conf").write_text(TUTORIAL_MAIL)
    (root / "conf.d/10-ssl.conf").write_text(TUTORIAL_SSL)
    main = root / "dovecot.conf"
    main.write_text("protocols = imap pop3\n!include conf.d/*.conf\n")
    return main


def test_tutorial_blocks_parse_exactly(tmp_path: Path) -> None:
    cfg = load_config(tutorial_tree(tmp_path), loader=PrivateKeysLoader())
    assert [u.settings for u in cfg.userdbs] == [{"driver": "passwd", "args": "blocking=no"}]
    passdb = cfg.passdbs[0]
    assert passdb.settings == {
        "driver": "passwd-file", "args": "scheme=blf-crypt /usr/local/etc/passwd.replica",
        "default_fields": "", "override_fields": "", "deny": "no", "master": "no", "pass": "no",
        "skip": "never", "mechanisms": "", "username_filter": "", "result_failure": "continue",
        "result_internalfail": "continue", "result_success": "return-ok", "auth_verbose": "default"}
    assert cfg.get("mail_location") == "maildir:~/Maildir:LAYOUT=fs"
    assert cfg.get("ssl") == "yes"
    assert cfg.get("ssl_cert") == FAKE_PEM
    assert cfg.get("ssl_key", protocol="imap") == FAKE_PEM
    assert cfg.warnings == []


@needs_doveconf
def test_doveconf_n_matches_on_stock_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert our_n(STOCK, capsys) == doveconf_n(STOCK)


@needs_doveconf
def test_doveconf_n_matches_on_tutorial_and_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = tutorial_tree(tmp_path)
    (tmp_path / "greeting.txt").write_text("hi\n")
    (tmp_path / "conf.d/20-extra.conf").write_text(
        "login_greeting = <../greeting.txt\nmail_plugins = quota\nprotocol imap {\n"
        "  mail_plugins = $mail_plugins imap_quota\n  imap_max_line_length = 128k\n}\n"
        "local 127.0.0.1 {\n  login_greeting = local greet\n  protocol imap {\n"
        "    imap_idle_notify_interval = 5 mins\n  }\n}\nremote 10.0.0.0/8 {\n  disable_plaintext_auth = no\n}\n"
        "local_name mail.x.org {\n  ssl_cert = </etc/ssl/certs/x.pem\n}\n"
        "service imap-login {\n  inet_listener imap {\n    port = 1143\n  }\n}\n"
        "plugin {\n  sieve = file:~/sieve\n}\nauth_mechanisms = plain login\ndefault_vsz_limit = 512M\n"
        'namespace inbox {\n  inbox = yes\n  mailbox "Sent Messages" {\n    special_use = \\Sent\n  }\n'
        "  mailbox Sent {\n    special_use = \\Sent\n    auto = subscribe\n  }\n}\n"
        "log_timestamp = \"%Y-%m-%d %H:%M:%S \"\nssl_key_password = secret\n")
    assert our_n(main, capsys) == doveconf_n(main)


def test_adm_config_error_exit_89(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("sssl = yes\n")
    assert adm_main(["-c", str(bad), "config", "-n"]) == 89
    err = capsys.readouterr().err
    assert err == f"Fatal: Error in configuration file {bad} line 1: Unknown setting: sssl (did you mean ssl?)\n"
    assert adm_main(["-c", str(tmp_path / "missing.conf"), "config"]) == 89


def test_adm_config_names_and_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "x.conf"
    conf.write_text("imap_max_line_length = 96k\nprotocol imap {\n  imap_max_line_length = 128k\n}\n"
                    "ssl_cert = </etc/ssl/x.pem\n")
    assert adm_main(["-c", str(conf), "config", "imap_max_line_length", "ssl_cert"]) == 0
    assert capsys.readouterr().out == "imap_max_line_length = 96 k\nssl_cert = </etc/ssl/x.pem\n"
    assert adm_main(["-c", str(conf), "config", "-h", "-f", "protocol=imap", "imap_max_line_length"]) == 0
    assert capsys.readouterr().out == "128 k\n"
    assert adm_main(["-c", str(conf), "config", "imap_max_line_lenght"]) == 1
    assert "did you mean imap_max_line_length?" in capsys.readouterr().err


def test_adm_config_full_dump_lists_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "x.conf"
    conf.write_text("passdb {\n  driver = pam\n}\n")
    assert adm_main(["-c", str(conf), "config"]) == 0
    out = capsys.readouterr().out
    assert "\nauth_failure_delay = 2 secs\n" in out
    assert "\npassdb {\n  args = \n  auth_verbose = default\n" in out
    assert "  inet_listener imaps {\n    address = \n    haproxy = no\n    port = 993\n" in out


ODD_CORNERS = """\
namespace foo {
  separator = /
  prefix = x/
}
namespace {
  inbox = yes
}
service imap {
  process_limit = 10
}
service imap-login {
  inet_listener imap {
    port = 143
  }
}
userdb {
  driver = passwd
  args = x
}
plugin {
}
local_name "a.org b.org" {
  ssl_cert = <x
}
protocol !indexer-worker {
  mail_vsize_bg_after_count = 0
}
log_timestamp = "%b %d "
login_greeting = x#y
mail_plugins = $mail_plugins acl
login_trusted_networks = $ENV:NOPE 10.0.0.0/8
"""


@needs_doveconf
def test_doveconf_n_matches_on_odd_corners(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = tmp_path / "dovecot.conf"
    main.write_text(ODD_CORNERS)
    assert our_n(main, capsys) == doveconf_n(main)


SECRETS = """\
doveadm_password = x
doveadm_api_key = y
imapc_password = z
ssl_client_key = <f
ssl_alt_key = <g
ssl_dh = <h
ssl_key = plain
imapc_master_user = m
plugin {
  mail_crypt_private_password = q
  quota_pass = r
  some_key = s
}
passdb {
  driver = static
  args = password=secret
}
login_trusted_networks =
"""


@needs_doveconf
def test_doveconf_n_hides_secrets_like_doveconf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = tmp_path / "dovecot.conf"
    main.write_text(SECRETS)
    ours = our_n(main, capsys)
    assert ours == doveconf_n(main)
    assert "  args = password=#hidden_use-P_to_show#" in ours


def test_show_secrets_with_P(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = tmp_path / "dovecot.conf"
    main.write_text(SECRETS)
    assert adm_main(["-c", str(main), "config", "-n", "-P"]) == 0
    out = capsys.readouterr().out
    assert "doveadm_password = x\n" in out
    assert "  args = password=secret\n" in out
    assert "ssl_dh = <h\n" in out


def doveconf_all(path: Path) -> list[str]:
    out = subprocess.run([str(DOVECONF), "-c", str(path)], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if not line.startswith("#")]


@needs_doveconf
def test_full_dump_matches_doveconf_a(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = tutorial_tree(tmp_path)
    (tmp_path / "conf.d/20-filters.conf").write_text(
        "protocol imap {\n  imap_max_line_length = 128k\n}\nlocal 127.0.0.1 {\n  login_greeting = hi\n"
        "  protocol imap {\n    imap_idle_notify_interval = 5 mins\n  }\n}\nremote 10.0.0.0/8 {\n"
        "  disable_plaintext_auth = no\n}\nservice imap-login {\n  inet_listener imap {\n    port = 1143\n  }\n}\n")
    for path in (STOCK, main):
        assert adm_main(["-c", str(path), "config"]) == 0
        ours = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
        assert ours == doveconf_all(path)


def test_embedded_default_config(capsys: pytest.CaptureFixture[str]) -> None:
    from maa_server.config import default_config_path

    path = default_config_path()
    assert path == Path(__file__).resolve().parents[3] / "conf" / "maa.conf"
    if not path.exists():
        pytest.skip("conf/ not in this checkout")
    assert adm_main(["config", "-n"]) == 0  # no -c: the embedded configuration
    out = capsys.readouterr().out
    assert out.startswith(f"# maa-server {__import__('maa_server').__version__}: {path}\n")
    cfg = load_config(path, read_files=False)
    assert cfg.warnings == []
    assert cfg.passdbs and cfg.userdbs


@needs_stock
def test_dump_n_is_itself_an_equivalent_config(tmp_path: Path) -> None:
    from maa_server.config import parse_config_text
    from maa_server.config.dump import dump_config

    original = load_config(STOCK, read_files=False)
    text = dump_config(original, non_default=True, show_secrets=True)
    again = parse_config_text(text, tmp_path / "dovecot.conf", read_files=False)
    for protocol in (None, "imap", "pop3", "lmtp"):
        assert dict(again.settings(protocol=protocol)) == dict(original.settings(protocol=protocol))
    assert [p.settings for p in again.passdbs] == [p.settings for p in original.passdbs]
    assert [(m.name, m.settings) for m in again.namespaces[0].children] == \
        [(m.name, m.settings) for m in sorted(original.namespaces[0].children, key=lambda m: m.name)]
    assert again.plugin() == original.plugin()
