"""Fixtures: the same loopback stack as the POP3 tests (LMTP over TCP and a
UNIX socket, POP3 to read back), users alice and bob."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pop3.maa_pop3_harness import MaaStack
from tests.support.tmp import reachable_tmp_dir


@pytest.fixture
def tmp_path(tmp_path: Path) -> Iterator[Path]:
    """Under root, a 0755 directory in /tmp instead of pytest's 0700 one:
    maa-lda (as dovecot-lda) drops to the mail user's uid before it touches
    the Maildir, and that user must be able to reach it."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    with reachable_tmp_dir("maa-lmtp-") as root:
        yield root


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[MaaStack]:
    running = MaaStack(tmp_path, extra_config="auth_failure_delay = 0").start()
    try:
        yield running
    finally:
        running.stop()
