"""Where folders live on disk: names <-> directories for LAYOUT=fs and Maildir++.

Dovecot source: src/lib-storage/list/mailbox-list-fs.c, mailbox-list-maildir.c,
mailbox-list.c (name validation). Spec 5.1 and 5.10. Mailbox names reaching
this module are split into levels by the store's separator; every level is
checked so that no name can reach outside the mail root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from maa_server.storage import mutf7
from maa_server.storage.index.cache import CACHE_NAME, STRUCTS_NAME
from maa_server.storage.interface import InvalidMailboxName
from maa_server.storage.location import MailLocation
from maa_server.storage.maildir.folder import FolderPaths

TRASHED = "DOVECOT-TRASHED"  # Dovecot's name for a folder being deleted
MAILDIR_SUBDIRS = ("cur", "new", "tmp")


@dataclass(frozen=True, slots=True)
class ListedFolder:
    levels: tuple[str, ...]  # Unicode levels
    selectable: bool


class Layout:
    def __init__(self, location: MailLocation, separator: str | None = None) -> None:
        self.location = location
        self.fs = location.layout == "fs"
        self.disk_separator = "/" if self.fs else "."
        # The separator clients see (namespace `separator`, else the layout's).
        self.separator = separator or self.disk_separator

    # Names -------------------------------------------------------------------

    def split(self, name: str) -> tuple[str, ...]:
        """Validate a mailbox name and return its levels; INBOX normalised.
        Raises InvalidMailboxName with Dovecot's reasons (spec 5.10;
        mailbox-list.c mailbox_list_is_valid_name, observed texts)."""

        def invalid(reason: str) -> InvalidMailboxName:
            return InvalidMailboxName(f"Invalid mailbox name: {reason}")

        if not name:
            raise invalid("Empty name")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
            raise invalid("Contains control characters")
        if name[0] == "~":
            raise invalid("Begins with '~'")
        if name.startswith(self.separator) or name[0] == "/":
            raise invalid("Begins with hierarchy separator")
        if self.separator != "/" and "/" in name:
            raise invalid("Contains '/'")
        if len(name.encode("utf-8")) > 1000:
            raise invalid("Name is too long")
        levels = name.split(self.separator)
        if levels[-1] == "":
            levels.pop()  # "Sent/" names "Sent", as Dovecot accepts it
        for level in levels:
            if level == "":
                raise invalid("Has adjacent hierarchy separators")
            if level in (".", ".."):
                raise invalid("Contains '.' or '..' as a hierarchy level")
            if self.disk_separator in level:
                # e.g. "a.b" as one level of a Maildir++ store shown with "/".
                raise invalid(f"Contains the storage separator '{self.disk_separator}'")
            if self.fs and level in MAILDIR_SUBDIRS:
                raise invalid("Contains reserved name")
            if level in (CACHE_NAME, STRUCTS_NAME) or level.startswith("." + TRASHED) or (not self.fs and level.startswith(TRASHED)):
                raise invalid("Contains reserved name")
        if levels[0].upper() == "INBOX":
            levels[0] = "INBOX"
        return tuple(levels)

    def join(self, levels: tuple[str, ...]) -> str:
        return self.separator.join(levels)

    def _encode(self, level: str) -> str:
        return level if self.location.utf8 else mutf7.encode(level)

    def _decode(self, level: str) -> str:
        if self.location.utf8:
            return level
        try:
            return mutf7.decode(level)
        except ValueError:
            return level

    def storage_levels(self, levels: tuple[str, ...]) -> list[str]:
        """The on-disk (and subscriptions file) form of each level."""
        return [self._encode(level) for level in levels]

    def levels_from_storage(self, stored: list[str]) -> tuple[str, ...]:
        levels = [self._decode(level) for level in stored]
        if levels and levels[0].upper() == "INBOX":
            levels[0] = "INBOX"
        return tuple(levels)

    # Paths -------------------------------------------------------------------

    @property
    def root(self) -> str:
        return self.location.root

    def is_inbox(self, levels: tuple[str, ...]) -> bool:
        return levels == ("INBOX",)

    def _rel(self, levels: tuple[str, ...]) -> str:
        encoded = self.storage_levels(levels)
        if self.fs:
            return os.path.join(*encoded)
        return "." + ".".join(encoded)

    def mail_dir(self, levels: tuple[str, ...]) -> str:
        if self.is_inbox(levels):
            return self.location.inbox or self.root
        return os.path.join(self.root, self._rel(levels))

    def _side_dir(self, base: str, levels: tuple[str, ...]) -> str:
        # CONTROL=/INDEX= trees name folders as the layout does: .INBOX,
        # .Folder with Maildir++ (spec 2.4); INBOX, A/B with LAYOUT=fs
        # (observed with Dovecot 2.3.19).
        if self.is_inbox(levels):
            return os.path.join(base, "INBOX" if self.fs else ".INBOX")
        return os.path.join(base, self._rel(levels))

    def control_dir(self, levels: tuple[str, ...]) -> str:
        if self.location.control:
            return self._side_dir(self.location.control, levels)
        return self.mail_dir(levels)

    def index_dir(self, levels: tuple[str, ...]) -> str:
        if self.location.index == "MEMORY":
            return ""
        if self.location.index:
            return self._side_dir(self.location.index, levels)
        return self.mail_dir(levels)

    @property
    def root_control_dir(self) -> str:
        return self.location.control or self.root

    def folder_paths(self, levels: tuple[str, ...]) -> FolderPaths:
        index = self.index_dir(levels)
        return FolderPaths(
            mail_dir=self.mail_dir(levels),
            control_dir=self.control_dir(levels),
            cache_path=os.path.join(index, CACHE_NAME) if index else "",
            root_control_dir=self.root_control_dir,
        )

    # Listing (blocking) --------------------------------------------------------

    def list_folders(self) -> list[ListedFolder]:
        """Every folder directory under the root (INBOX not included)."""
        if self.fs:
            return self._list_fs()
        return self._list_maildirpp()

    def _list_maildirpp(self) -> list[ListedFolder]:
        result: list[ListedFolder] = []
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return result
        for entry in entries:
            name = entry.name
            if not name.startswith(".") or name in (".", "..") or len(name) < 2:
                continue
            if not entry.is_dir() or name[1:].startswith(TRASHED):
                continue
            stored = name[1:].split(".")
            if any(not part for part in stored):
                continue
            levels = self.levels_from_storage(stored)
            if self.is_inbox(levels):
                continue
            result.append(ListedFolder(levels, True))
        return result

    def _list_fs(self) -> list[ListedFolder]:
        result: list[ListedFolder] = []

        def walk(path: str, prefix: tuple[str, ...]) -> None:
            try:
                entries = list(os.scandir(path))
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                return
            for entry in entries:
                name = entry.name
                # Dot names are folders too (Dovecot lists ".hidden"), except
                # a folder being deleted.
                if name.startswith("." + TRASHED) or name in MAILDIR_SUBDIRS or not entry.is_dir():
                    continue
                levels = prefix + (self._decode(name),)
                if not prefix and levels[0].upper() == "INBOX":
                    # Holds INBOX's children; INBOX itself is the root.
                    walk(entry.path, ("INBOX",))
                    continue
                result.append(ListedFolder(levels, os.path.isdir(os.path.join(entry.path, "cur"))))
                walk(entry.path, levels)

        walk(self.root, ())
        return result
