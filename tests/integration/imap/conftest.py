"""Fixtures: a maa IMAP server with users alice and bob (see harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.imap.harness import ImapServer, Wire

try:  # the config and storage parts land in parallel with this one
    import maa_server.config as _config
    import maa_server.storage.factory  # noqa: F401
    _READY = hasattr(_config, "parse_config_text")
except ImportError:
    _READY = False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ImapServer]:
    if not _READY:
        pytest.skip("config/storage parts not available yet")
    running = ImapServer(tmp_path).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator:
    """For tests that need extra configuration."""
    if not _READY:
        pytest.skip("config/storage parts not available yet")
    started: list[ImapServer] = []

    def make(extra: str) -> ImapServer:
        root = tmp_path / f"s{len(started)}"
        root.mkdir()
        srv = ImapServer(root, extra_config=extra)
        started.append(srv.start())
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def wire(server: ImapServer) -> Iterator[Wire]:
    w = Wire(server.port)
    try:
        yield w
    finally:
        w.close()
