"""Pieces of Dovecot-format configuration that the test configs share
(the same text serves maa-server and the real Dovecot)."""

from __future__ import annotations

from pathlib import Path


def passwd_file_databases(users: Path | str, scheme: str = "") -> str:
    """A `passdb` and a `userdb` section, both reading the passwd-file
    `users`; `scheme` is the passdb's default password scheme."""
    scheme_arg = f"scheme={scheme} " if scheme else ""
    return f"""\
passdb {{
  driver = passwd-file
  args = {scheme_arg}{users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
"""
