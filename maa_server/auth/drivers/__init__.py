"""passdb and userdb drivers; `make_passdb` / `make_userdb` pick one by name."""

from __future__ import annotations

from maa_server.auth.drivers.base import (
    DriverError,
    PassdbDriver,
    PassdbLookup,
    UserdbDriver,
)

# Drivers Dovecot 2.3 has and we do not (yet): a clear refusal, not "unknown".
DOVECOT_ONLY_PASSDBS = frozenset({"sql", "ldap", "dict", "checkpassword", "bsdauth", "imap",
                                  "oauth2", "lua", "vpopmail"})
DOVECOT_ONLY_USERDBS = frozenset({"sql", "ldap", "dict", "checkpassword", "lua", "vpopmail", "nss"})


def make_passdb(driver: str, args: str) -> PassdbDriver:
    name = driver.strip().lower()
    if name == "passwd-file":
        from maa_server.auth.drivers.passwd_file import PasswdFilePassdb
        return PasswdFilePassdb(args)
    if name == "passwd":
        from maa_server.auth.drivers.system import PasswdPassdb
        return PasswdPassdb(args)
    if name == "shadow":
        from maa_server.auth.drivers.system import ShadowPassdb
        return ShadowPassdb(args)
    if name == "pam":
        from maa_server.auth.drivers.pam import PamPassdb
        return PamPassdb(args)
    if name == "static":
        from maa_server.auth.drivers.static import StaticPassdb
        return StaticPassdb(args)
    if name in DOVECOT_ONLY_PASSDBS:
        raise DriverError(f"passdb driver '{driver}' is not supported by maa-server "
                          "(supported: passwd-file, passwd, shadow, pam, static)")
    raise DriverError(f"Unknown passdb driver '{driver}'")


def make_userdb(driver: str, args: str) -> UserdbDriver:
    name = driver.strip().lower()
    if name == "passwd-file":
        from maa_server.auth.drivers.passwd_file import PasswdFileUserdb
        return PasswdFileUserdb(args)
    if name == "passwd":
        from maa_server.auth.drivers.system import PasswdUserdb
        return PasswdUserdb(args)
    if name == "static":
        from maa_server.auth.drivers.static import StaticUserdb
        return StaticUserdb(args)
    if name == "prefetch":
        from maa_server.auth.drivers.static import PrefetchUserdb
        return PrefetchUserdb(args)
    if name in DOVECOT_ONLY_USERDBS:
        raise DriverError(f"userdb driver '{driver}' is not supported by maa-server "
                          "(supported: passwd-file, passwd, static, prefetch)")
    raise DriverError(f"Unknown userdb driver '{driver}'")


__all__ = ["DriverError", "PassdbDriver", "PassdbLookup", "UserdbDriver", "make_passdb", "make_userdb"]
