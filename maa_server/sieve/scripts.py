"""Where a user's Sieve scripts live, as Pigeonhole keeps them:
`sieve = file:~/sieve;active=~/.dovecot.sieve` means one `NAME.sieve` per
script in ~/sieve/ and the active one pointed to by the symlink
~/.dovecot.sieve (relative, `sieve/NAME.sieve`). Shared by ManageSieve and
delivery. Blocking file work: callers run it in a thread."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from maa_server.sieve.errors import SieveError
from maa_server.sieve.validator import compile_script

DEFAULT_LOCATION = "file:~/sieve;active=~/.dovecot.sieve"
_BAD_NAME = re.compile(r"[/\x00-\x1f\x7f]")


class ScriptError(Exception):
    """A ManageSieve-level failure; `code` is the response code (RFC 5804 1.3)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Quota:
    max_scripts: int = 0  # sieve_quota_max_scripts (0 = unlimited)
    max_storage: int = 0  # sieve_quota_max_storage (0 = unlimited)
    max_script_size: int = 1 << 20  # sieve_max_script_size (Pigeonhole: 1M)


def parse_location(location: str, home: str, sieve_dir: str = "") -> tuple[Path, Path]:
    """`file:~/sieve;active=~/.dovecot.sieve` -> (script dir, active link).

    The pre-2.2 form `sieve = ~/.dovecot.sieve` names the active script
    itself; its scripts then live in `sieve_dir` (default ~/sieve), as
    Pigeonhole still reads it (doc/locations.txt, "compatibility")."""
    location = location or DEFAULT_LOCATION
    expand = (lambda p: os.path.join(home, p[2:]) if p.startswith("~/") else p)
    if not location.startswith("file:") and ";" not in location:
        legacy = Path(expand(location.strip()))
        if legacy.suffix == ".sieve" or (legacy.exists() and not legacy.is_dir()):
            return Path(expand(sieve_dir or "~/sieve")), legacy
    location = location.removeprefix("file:")
    path, *options = location.split(";")
    active = ""
    for opt in options:
        key, _, value = opt.partition("=")
        if key.strip() == "active":
            active = value.strip()
    script_dir = Path(expand(path.strip() or "~/sieve"))
    return script_dir, Path(expand(active or "~/.dovecot.sieve"))


class ScriptStore:
    def __init__(self, script_dir: Path, active_link: Path, quota: Quota = Quota(),
                 owner: tuple[int, int] | None = None) -> None:
        self.dir = script_dir
        self.active_link = active_link
        self.quota = quota
        # (uid, gid) the files must belong to when we write them as root,
        # as the user's own managesieve process would have created them.
        self.owner = owner

    def _own(self, path: Path) -> None:
        if self.owner is not None:
            os.lchown(path, *self.owner)

    def _path(self, name: str) -> Path:
        if not name or _BAD_NAME.search(name) or name in (".", "..") or len(name) > 255:
            raise ScriptError(f"Invalid Sieve script name `{name}'.", "")
        return self.dir / f"{name}.sieve"

    def names(self) -> list[str]:
        try:
            return sorted(p.name[:-6] for p in self.dir.iterdir()
                          if p.name.endswith(".sieve") and p.is_file())
        except FileNotFoundError:
            return []

    def active(self) -> str | None:
        """The active script's name, or None (a plain file at the active path
        is the admin's own script, which ManageSieve leaves alone)."""
        try:
            target = os.readlink(self.active_link)
        except OSError:
            return None
        name = os.path.basename(target)
        return name[:-6] if name.endswith(".sieve") else None

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise ScriptError(f"Sieve script `{name}' not found", "NONEXISTENT") from None

    def check(self, name: str, content: bytes) -> None:
        """Compile; a failure raises ScriptError with Pigeonhole's report,
        each line prefixed with `name: ` unless the name is ""."""
        prefix = f"{name}: " if name else ""
        try:
            compile_script(content.decode("utf-8"), name)
        except UnicodeDecodeError:
            raise ScriptError(f"{prefix}error: script is not valid UTF-8.\r\n") from None
        except SieveError as exc:
            kind = "parse" if any("expected" in m or "unterminated" in m for m in exc.messages) \
                else "validation"
            lines = [prefix + m for m in exc.messages] + [f"{prefix}error: {kind} failed."]
            raise ScriptError("\r\n".join(lines) + "\r\n") from None

    def have_space(self, name: str, size: int) -> None:
        q = self.quota
        if q.max_script_size and size > q.max_script_size:
            raise ScriptError(f"Script is too large (max {q.max_script_size} bytes).", "QUOTA/MAXSIZE")
        existing = self.names()
        if q.max_scripts and name not in existing and len(existing) >= q.max_scripts:
            raise ScriptError(f"Script count quota exceeded (max {q.max_scripts} scripts).",
                              "QUOTA/MAXSCRIPTS")
        if q.max_storage:
            used = sum(self._path(n).stat().st_size for n in existing if n != name)
            if used + size > q.max_storage:
                raise ScriptError(f"Script storage quota exceeded (max {q.max_storage} bytes).",
                                  "QUOTA/MAXSTORAGE")

    def put(self, name: str, content: bytes) -> None:
        path = self._path(name)
        self.have_space(name, len(content))
        self.check(name, content)
        # Pigeonhole's layout: ~/sieve and ~/sieve/tmp are 0700, scripts 0600;
        # a script is written under tmp/ and renamed into place.
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, mode=0o700)
            self._own(self.dir)
        tmp_dir = self.dir / "tmp"
        if not tmp_dir.is_dir():
            tmp_dir.mkdir(mode=0o700)
            self._own(tmp_dir)
        tmp = tmp_dir / f"{name}.{os.getpid()}.sieve"
        with open(tmp, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        self._own(tmp)
        os.replace(tmp, path)

    def delete(self, name: str) -> None:
        path = self._path(name)
        if self.active() == name:
            raise ScriptError("Cannot delete the active Sieve script.", "ACTIVE")
        try:
            path.unlink()
        except FileNotFoundError:
            raise ScriptError(f"Sieve script `{name}' not found", "NONEXISTENT") from None

    def rename(self, old: str, new: str) -> None:
        src, dst = self._path(old), self._path(new)
        if not src.exists():
            raise ScriptError(f"Sieve script `{old}' not found", "NONEXISTENT")
        if dst.exists():
            raise ScriptError("A sieve script with that name already exists.", "ALREADYEXISTS")
        was_active = self.active() == old
        os.link(src, dst)
        if was_active:
            self._link(new)
        src.unlink()

    def set_active(self, name: str) -> bool:
        """"" deactivates (RFC 5804 2.8). True when the active script changed
        (for "": when one was active)."""
        if name == "":
            if self.active() is not None:
                self.active_link.unlink()
                return True
            return False
        if not self._path(name).exists():
            raise ScriptError(f"Sieve script `{name}' not found", "NONEXISTENT")
        was = self.active()
        self._link(name)
        return was != name

    def _link(self, name: str) -> None:
        if self.active_link.exists() and not self.active_link.is_symlink():
            raise ScriptError("Cannot activate script: the active script path is a regular file "
                              "managed by the administrator.")
        target = os.path.relpath(self._path(name), self.active_link.parent)
        tmp = self.active_link.with_name(self.active_link.name + f".{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        self._own(tmp)
        os.replace(tmp, self.active_link)

    def active_script_text(self) -> tuple[str, str] | None:
        """(name, text) of the script delivery should run: the symlink's
        target, or a plain file at the active path (admin-managed)."""
        try:
            text = self.active_link.read_text("utf-8")
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError, IsADirectoryError):
            return None
        return (self.active() or self.active_link.name.removesuffix(".sieve")), text
