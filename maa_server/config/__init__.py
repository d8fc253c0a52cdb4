"""Dovecot 2.3 configuration reader: grammar, settings table, filters, services.

    from maa_server.config import load_config, parse_config_text, Config, ConfigError
    cfg = load_config("/etc/dovecot/dovecot.conf")
    cfg.get("ssl"), cfg.get("imap_max_line_length", protocol="imap", local_ip="127.0.0.1")
    cfg.passdbs, cfg.userdbs, cfg.namespaces, cfg.services["imap-login"], cfg.plugin("lmtp")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from maa_server.config.errors import ConfigError
from maa_server.config.model import Config, Settings
from maa_server.config.parser import FileSystemLoader, Loader, Parser
from maa_server.config.tree import Section

__all__ = ["Config", "ConfigError", "Section", "Settings", "default_config_path", "load_config",
           "parse_config_text"]


def default_config_path() -> Path:
    """The embedded default configuration of a checkout: `<repo>/conf/maa.conf`."""
    return Path(__file__).resolve().parents[2] / "conf" / "maa.conf"


def load_config(path: str | os.PathLike[str], *, read_files: bool = True,
                loader: Loader | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a configuration file and everything it includes.

    `read_files=False` keeps `<file` values unread, as `doveconf -n` does."""
    text_path = os.path.abspath(os.fspath(path))
    parser = Parser(loader or FileSystemLoader(), read_files=read_files, environ=environ)
    return Config(parser.parse_file(text_path), text_path)


def parse_config_text(text: str, path: str | os.PathLike[str] = "<string>", *, read_files: bool = True,
                      loader: Loader | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Parse configuration text; `!include` and `<file` resolve relative to path's directory."""
    text_path = os.fspath(path)
    if text_path != "<string>":
        text_path = os.path.abspath(text_path)
    parser = Parser(loader or FileSystemLoader(), read_files=read_files, environ=environ)
    return Config(parser.parse_text(text, text_path), text_path)
