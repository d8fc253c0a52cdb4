"""The auth worker pool: blocking auth work (bcrypt/argon2/SHA-crypt hashing,
PAM, NSS lookups, passwd-file reads) runs here, never on the event loop.

A pool of its own, bounded like Dovecot's auth_worker_max_count idea, so that
50 clients hashing at once cannot starve the threads other layers use for
message reads."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Hashing is CPU-bound (bcrypt and libcrypt release the GIL): a few threads
# per core keep every core busy without queueing up hundreds of threads.
MAX_WORKERS = max(4, min(16, 2 * (os.cpu_count() or 2)))
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="auth-worker")
    return _pool


async def run_blocking(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(func, *args, **kwargs))
