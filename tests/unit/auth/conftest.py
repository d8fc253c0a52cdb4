"""Builds a real Authenticator from config text (the config helper's parser)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from maa_server.auth import MaaAuthenticator, build_authenticator
from maa_server.auth.interface import ClientInfo

LOCAL = ClientInfo(protocol="imap", remote_ip="127.0.0.1", remote_port=50000,
                   local_ip="127.0.0.1", local_port=143, session_id="c2Vzc2lvbjEyMzQ1")
REMOTE = ClientInfo(protocol="imap", remote_ip="192.0.2.10", remote_port=50000,
                    local_ip="192.0.2.1", local_port=143, session_id="cmVtb3RlMTIzNDU2")


@pytest.fixture
def make_auth(tmp_path: Path) -> Callable[[str], MaaAuthenticator]:
    try:
        from maa_server.config import parse_config_text
    except ImportError:
        pytest.skip("maa_server.config not available yet")

    def build(text: str) -> MaaAuthenticator:
        path = tmp_path / "maa.conf"
        path.write_text(text)
        auth = build_authenticator(parse_config_text(text, str(path)))
        assert isinstance(auth, MaaAuthenticator)
        return auth
    return build
