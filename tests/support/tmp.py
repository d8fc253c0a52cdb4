"""Temporary directories that the mail users a server drops to can reach."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def reachable_tmp_dir(prefix: str) -> Iterator[Path]:
    """A 0755 directory in /tmp, removed afterwards. Under root, pytest's
    own tmp_path is 0700 and a process that dropped to the mail user (as
    Dovecot's deliveries and maa-lda do) could not reach a home in it."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
