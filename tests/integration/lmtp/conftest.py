"""Fixtures: the same loopback stack as the POP3 tests (LMTP over TCP and a
UNIX socket, POP3 to read back), users alice and bob."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pop3.maa_pop3_harness import MaaStack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[MaaStack]:
    running = MaaStack(tmp_path, extra_config="auth_failure_delay = 0").start()
    try:
        yield running
    finally:
        running.stop()
