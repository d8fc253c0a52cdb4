"""ManageSieve in single-process mode for a userdb uid under first_valid_uid:
the login succeeds and the session refuses the user with Dovecot 2.3.19's
BYE (observed: managesieve(user): Error: Mail access ... not permitted)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tests.integration.sieve.client import RawSieve
from tests.integration.sieve.harness import SieveStack

REFUSAL = ("Mail access for users with UID 100 not permitted "
           "(see first_valid_uid in config file, uid from userdb lookup).")


def test_uid_under_first_valid_uid_gets_bye(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="maa")
    stack = SieveStack(tmp_path, extra_config="\nfirst_valid_uid = 500\n", uid=100, gid=100)
    stack.start()
    try:
        client = RawSieve(stack.sieve_port)
        try:
            assert client.login() == (b'BYE "Internal error occurred. '
                                      b'Refer to server log for more information."\r\n')
            assert client.file.readline() == b""
        finally:
            client.close()
        deadline = time.monotonic() + 5
        while not any(r.getMessage().startswith("Login: user=<alice>") for r in caplog.records) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stack.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert REFUSAL in lines
    assert any(m.startswith("Login: user=<alice>, method=PLAIN, rip=127.0.0.1") for m in lines), lines
    assert not any(m.startswith(("Disconnected", "Connection closed")) for m in lines), lines
    assert not (stack.home("alice") / "sieve").exists()
