"""Includes, `<file` values, `$variables`, sections and every error path with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from maa_server.config import ConfigError, load_config, parse_config_text


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_of(text: str, path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, path)
    return str(err.value)


# -- settings ----------------------------------------------------------------------------

def test_typed_values_and_defaults() -> None:
    cfg = parse_config_text("ssl = required\nimap_max_line_length = 128k\nauth_failure_delay = 5 secs\n"
                            "first_valid_uid = 1000\nauth_verbose = yes\n")
    assert cfg.get("ssl") == "required"
    assert cfg.get("imap_max_line_length") == 131072
    assert cfg.get("auth_failure_delay") == 5.0
    assert cfg.get("first_valid_uid") == 1000
    assert cfg.get("auth_verbose") is True
    # Dovecot's defaults when unset
    assert cfg.get("pop3_uidl_format") == "%08Xu%08Xv"
    assert cfg.get("mailbox_idle_check_interval") == 30.0
    assert cfg.get("disable_plaintext_auth") is True
    assert cfg.get("listen") == "*, ::"
    assert cfg.get("no_such_setting") is None


def test_last_assignment_wins_across_includes(tmp_path: Path) -> None:
    write(tmp_path / "conf.d/10-a.conf", "first_valid_uid = 999\n")
    write(tmp_path / "conf.d/20-b.conf", "first_valid_uid = 1000\n")
    main = write(tmp_path / "dovecot.conf", "!include conf.d/*.conf\n")
    assert load_config(main).get("first_valid_uid") == 1000


def test_settings_mapping_is_read_only_view() -> None:
    settings = parse_config_text("login_greeting = hi\n").settings()
    assert settings["login_greeting"] == "hi"
    assert "ssl" in settings and len(settings) > 300
    assert settings.origin("login_greeting").line == 1  # type: ignore[union-attr]
    assert settings.origin("ssl") is None


# -- includes ----------------------------------------------------------------------------

def test_include_is_relative_to_including_file_and_sorted(tmp_path: Path) -> None:
    write(tmp_path / "conf.d/10-auth.conf", "auth_mechanisms = plain\n!include auth-system.conf.ext\n")
    write(tmp_path / "conf.d/auth-system.conf.ext", "passdb {\n  driver = pam\n}\n")
    write(tmp_path / "conf.d/05-first.conf", "auth_mechanisms = login\n")
    main = write(tmp_path / "dovecot.conf", "!include conf.d/*.conf\n!include_try local.conf\n")
    cfg = load_config(main)
    assert cfg.get("auth_mechanisms") == "plain"
    assert [p.get("driver") for p in cfg.passdbs] == ["pam"]
    assert cfg.passdbs[0].file == str(tmp_path / "conf.d/auth-system.conf.ext")
    assert cfg.passdbs[0].line == 1


def test_include_braces_and_inside_section(tmp_path: Path) -> None:
    write(tmp_path / "a.inc", "driver = passwd-file\n")
    write(tmp_path / "b.inc", "args = /etc/users\n")
    main = write(tmp_path / "dovecot.conf", "passdb {\n  !include {a,b}.inc\n}\n")
    cfg = load_config(main)
    assert cfg.passdbs[0].settings == {"driver": "passwd-file", "args": "/etc/users"}


def test_include_errors(tmp_path: Path) -> None:
    main = tmp_path / "dovecot.conf"
    assert error_of("ssl = yes\n!include nosuch.conf\n", main) == \
        f"Error in configuration file {main} line 2: No matches"
    # !include_try silently skips
    assert parse_config_text("!include_try nosuch.conf\n!include_try none/*.conf\n", main).get("ssl") == "yes"
    write(tmp_path / "loop.conf", "!include loop.conf\n")
    loop = tmp_path / "loop.conf"
    assert error_of("!include loop.conf\n", main) == \
        f"Error in configuration file {loop} line 1: Recursive include file: {loop}"


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    bad = write(tmp_path / "conf.d/10-ssl.conf", "# ssl\n\nssl = maybe\n")
    main = write(tmp_path / "dovecot.conf", "!include conf.d/*.conf\n")
    with pytest.raises(ConfigError) as err:
        load_config(main)
    assert str(err.value) == f"Error in configuration file {bad} line 3: Invalid value: maybe"
    assert (err.value.file, err.value.line) == (str(bad), 3)


def test_missing_main_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"open\(.*nosuch.conf\) failed: No such file or directory"):
        load_config(tmp_path / "nosuch.conf")


# -- <file values -----------------------------------------------------------------------------

def test_file_value_is_the_whole_content(tmp_path: Path) -> None:
    write(tmp_path / "private/cert.pem", "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
    write(tmp_path / "greeting.txt", "hello there\n\n")
    main = tmp_path / "dovecot.conf"
    cfg = parse_config_text("ssl_cert = <private/cert.pem\nlogin_greeting = < greeting.txt\n", main)
    assert cfg.get("ssl_cert").startswith("-----BEGIN CERTIFICATE-----\nabc")  # type: ignore[union-attr]
    # observed with doveconf -x: the content is kept as is, newlines included
    assert cfg.get("login_greeting") == "hello there\n\n"


def test_missing_file_value_names_the_file(tmp_path: Path) -> None:
    main = tmp_path / "dovecot.conf"
    assert error_of("ssl_key = </nonexistent/dovecot.key\n", main) == (
        f"Error in configuration file {main} line 1: "
        "ssl_key: Can't open file /nonexistent/dovecot.key: No such file or directory")
    # doveconf -n mode does not read files
    cfg = parse_config_text("ssl_key = </nonexistent/dovecot.key\n", main, read_files=False)
    assert cfg.root.assignments["ssl_key"].dump == "</nonexistent/dovecot.key"


# -- $variables -------------------------------------------------------------------------------

def test_variables() -> None:
    cfg = parse_config_text("protocols = $protocols imap\nprotocols = $protocols pop3\n"
                            "mail_plugins = quota\nprotocol lmtp {\n  mail_plugins = $mail_plugins sieve\n}\n"
                            "login_greeting = not$expanded $instance_name\n")
    assert cfg.get("protocols") == " imap pop3"  # Debian's empty default + " imap", as doveconf prints it
    assert cfg.get("mail_plugins") == "quota"
    assert cfg.get("mail_plugins", protocol="lmtp") == "quota sieve"
    # only a word that starts with `$` is a reference
    assert cfg.get("login_greeting", protocol="imap") == "not$expanded dovecot"


def test_env_variable_and_unknown_variable(tmp_path: Path) -> None:
    cfg = parse_config_text("login_greeting = $ENV:MAA_TEST ready\n", environ={"MAA_TEST": "hi"})
    assert cfg.get("login_greeting") == "hi ready"
    main = tmp_path / "x.conf"
    assert error_of("mail_plugins = $nosuch\n", main) == \
        f"Error in configuration file {main} line 1: Unknown variable: $nosuch"


def test_global_after_filter_warns() -> None:
    cfg = parse_config_text("mail_plugins = quota\nprotocol imap {\n  mail_plugins = $mail_plugins imap_quota\n}\n"
                            "mail_plugins = acl\n", "/tmp/x.conf")
    assert cfg.get("mail_plugins", protocol="imap") == "quota imap_quota"
    assert cfg.get("mail_plugins") == "acl"
    assert any("Global setting mail_plugins won't change the setting inside an earlier filter at "
               "/tmp/x.conf line 3" in w for w in cfg.warnings)


def test_section_variable_reads_global_default() -> None:
    cfg = parse_config_text("service imap {\n  vsz_limit = $default_vsz_limit\n}\n")
    assert cfg.services["imap"].get("vsz_limit") == "256 M"


# -- sections -------------------------------------------------------------------------------

def test_passdb_userdb_lists_keep_order() -> None:
    cfg = parse_config_text("passdb {\n driver = passwd-file\n master = yes\n}\npassdb {\n driver = pam\n}\n"
                            "userdb {\n driver = passwd\n}\n")
    assert [p.get("driver") for p in cfg.passdbs] == ["passwd-file", "pam"]
    assert cfg.passdbs[0].get("master") == "yes"
    assert cfg.passdbs[1].get("master", "no") == "no"
    assert [u.get("driver") for u in cfg.userdbs] == ["passwd"]


def test_named_sections_merge(tmp_path: Path) -> None:
    write(tmp_path / "10-mail.conf", "namespace inbox {\n  inbox = yes\n}\n")
    write(tmp_path / "15-mailboxes.conf",
          'namespace inbox {\n  mailbox Drafts {\n    special_use = \\Drafts\n  }\n'
          '  mailbox "Sent Messages" {\n    special_use = \\Sent\n  }\n}\n'
          'namespace inbox {\n  mailbox Drafts {\n    auto = subscribe\n  }\n}\n')
    main = write(tmp_path / "dovecot.conf", "!include *-*.conf\n")
    cfg = load_config(main)
    assert len(cfg.namespaces) == 1
    inbox = cfg.namespaces[0]
    assert (inbox.kind, inbox.name, inbox.get("inbox")) == ("namespace", "inbox", "yes")
    assert [(m.name, m.settings) for m in inbox.children] == [
        ("Drafts", {"special_use": "\\Drafts", "auto": "subscribe"}),
        ("Sent Messages", {"special_use": "\\Sent"})]


def test_plugin_and_dict_are_free_form() -> None:
    cfg = parse_config_text("plugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n  anything_at_all = 1\n}\n"
                            "protocol lmtp {\n  plugin {\n    sieve_extensions = +vacation-seconds\n  }\n}\n"
                            "dict {\n  quota = file:/var/quota\n}\n")
    assert cfg.plugin() == {"sieve": "file:~/sieve;active=~/.dovecot.sieve", "anything_at_all": "1"}
    assert cfg.plugin("lmtp")["sieve_extensions"] == "+vacation-seconds"
    assert "sieve_extensions" not in cfg.plugin("imap")
    assert cfg.dicts == {"quota": "file:/var/quota"}


@pytest.mark.parametrize(("text", "line", "message"), [
    ("sssl = yes\n", 1, "Unknown setting: sssl (did you mean ssl?)"),
    ("ssl = maybe\n", 1, "Invalid value: maybe"),
    ("auth_verbose = 0\n", 1, "Invalid boolean value: 0 (use yes or no)"),
    ("mail_max_userip_connections = abc\n", 1, "Invalid number abc: Not a valid number"),
    ("auth_failure_delay = 5\n", 1, "Time interval '5' is missing units (add e.g. 's' for seconds)"),
    ("imap_max_line_length = 5x\n", 1, "Invalid size: 5x"),
    ("service imap-login {\n  inet_listener imap {\n    port = abc\n  }\n}\n", 3, "Invalid port number abc"),
    ("passdb {\n  drivr = pam\n}\n", 2, "Unknown setting: drivr (did you mean driver?)"),
    ("passdb {\n  skip = sometimes\n}\n", 2, "Invalid value: sometimes"),
    ("namespace inbox {\n  mailbox Drafts {\n    auto = maybe\n  }\n}\n", 3, "Invalid value: maybe"),
    ("namespace inbox {\n  mailbox y {\n    special_use = Drafts\n  }\n}\n", 3,
     "mailbox y: unknown special_use: Drafts"),
    ("namespace inbox {\n  separator = //\n}\n", 2,
     "Namespace '': Hierarchy separator must be only one character long"),
    ("service imap {\n  type = xyz\n}\n", 2, "Unknown service type: xyz"),
    ("}\n", 1, "Unexpected '}'"),
    ("passdb { driver = pam }\n", 1, "Garbage after '{'"),
    ("passdb\n", 1, "Expecting '{'"),
    ("plugin {\n  foo {\n  }\n}\n", 2, "Section not allowed here"),
    ("passdb {\n  mailbox x {\n  }\n}\n", 2, "Section not allowed here"),
    ("mailbox x {\n}\n", 1, "Unknown section: mailbox"),
    ("namspace inbox {\n}\n", 1, "Unknown section: namspace (did you mean namespace?)"),
])
def test_errors_with_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    main = tmp_path / "x.conf"
    assert error_of(text, main) == f"Error in configuration file {main} line {line}: {message}"


def test_missing_close_brace(tmp_path: Path) -> None:
    main = tmp_path / "x.conf"
    assert error_of("ssl = yes\npassdb {\n  driver = pam\n", main) == \
        f"Error in configuration file {main}: Missing '}}' (section started at {main}:2)"


def test_not_implemented_setting_warns_once() -> None:
    cfg = parse_config_text("mdbox_rotate_size = 20M\nmdbox_rotate_size = 30M\nssl = yes\n", "/etc/x.conf")
    assert cfg.get("mdbox_rotate_size") == 30 * 1024 * 1024
    assert cfg.warnings == [("/etc/x.conf line 1: setting mdbox_rotate_size is not implemented "
                             "by maa-server and is ignored")]


def test_unreadable_include_is_an_error_but_include_try_skips(tmp_path: Path) -> None:
    (tmp_path / "conf.d/dir.conf").mkdir(parents=True)  # matches the glob, cannot be read
    main = tmp_path / "dovecot.conf"
    assert error_of("!include conf.d/*.conf\n", main) == (
        f"Error in configuration file {main} line 1: "
        f"Couldn't open include file {tmp_path / 'conf.d/dir.conf'}: Is a directory")
    assert parse_config_text("!include_try conf.d/*.conf\n", main).get("ssl") == "yes"


def test_absolute_include(tmp_path: Path) -> None:
    extra = write(tmp_path / "elsewhere/extra.conf", "login_greeting = absolute\n")
    cfg = parse_config_text(f"!include {extra}\n", tmp_path / "sub/dovecot.conf")
    assert cfg.get("login_greeting") == "absolute"
    assert str(extra) in cfg.files


def test_non_utf8_file_is_read_byte_for_byte(tmp_path: Path) -> None:
    main = tmp_path / "dovecot.conf"
    main.write_bytes(b"login_greeting = Gr\xfc\xdfe\n")
    assert load_config(main).get("login_greeting") == "Gr\u00fc\u00dfe"
