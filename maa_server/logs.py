"""Dovecot-shaped log lines (spec section 6).

Every line is `<process prefix>: <Level>: <message>`; the syslog form drops
`Info: ` as Dovecot does. Callers name the process prefix as Dovecot does:
`imap-login`, `pop3-login`, `auth`, `master`, `lmtp(<pid>)`,
`imap(<user>)<<pid>><<session>>`. The daemon decides where lines go
(`configure_logging`); until then they go to stderr.
"""

from __future__ import annotations

import logging
import os

_logger = logging.getLogger("maa")

LEVEL_NAMES = {
    logging.DEBUG: "Debug",
    logging.INFO: "Info",
    logging.WARNING: "Warning",
    logging.ERROR: "Error",
    logging.CRITICAL: "Fatal",
}


class MailLog:
    """A logger bound to one Dovecot process prefix."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _log(self, level: int, message: str) -> None:
        if _logger.isEnabledFor(level):
            _logger.log(level, message, extra={"dovecot_prefix": self.prefix})

    def debug(self, message: str) -> None:
        self._log(logging.DEBUG, message)

    def info(self, message: str) -> None:
        self._log(logging.INFO, message)

    def warning(self, message: str) -> None:
        self._log(logging.WARNING, message)

    def error(self, message: str) -> None:
        self._log(logging.ERROR, message)

    def fatal(self, message: str) -> None:
        self._log(logging.CRITICAL, message)


def get_log(prefix: str) -> MailLog:
    return MailLog(prefix)


def mail_process_prefix(protocol: str, user: str, session_id: str) -> str:
    """`imap(alice)<1234><x5Wz5TBhOLt/AAAB>` (mail_log_prefix's default)."""
    return f"{protocol}({user})<{os.getpid()}><{session_id}>"


def login_fields(user: str, method: str, rip: str, lip: str, secured: bool,
                 session_id: str, mpid: int | None = None) -> str:
    """login_log_format_elements expanded: empty elements dropped except user."""
    parts = [f"user=<{user}>"]
    if method:
        parts.append(f"method={method}")
    if rip:
        parts.append(f"rip={rip}")
    if lip:
        parts.append(f"lip={lip}")
    if mpid:
        parts.append(f"mpid={mpid}")
    if secured:
        parts.append("TLS")
    if session_id:
        parts.append(f"session=<{session_id}>")
    return ", ".join(parts)


class DovecotFormatter(logging.Formatter):
    """File form: `<timestamp><prefix>: <Level>: <message>`."""

    def __init__(self, timestamp_format: str = "%b %d %H:%M:%S ", syslog: bool = False) -> None:
        super().__init__()
        self.timestamp_format = timestamp_format
        self.syslog = syslog

    def format(self, record: logging.LogRecord) -> str:
        import time

        prefix = getattr(record, "dovecot_prefix", "master")
        level = LEVEL_NAMES.get(record.levelno, "Info")
        if self.syslog:
            head = f"{prefix}: " if record.levelno == logging.INFO else f"{prefix}: {level}: "
            return head + record.getMessage()
        stamp = time.strftime(self.timestamp_format, time.localtime(record.created)) \
            if self.timestamp_format else ""
        return f"{stamp}{prefix}: {level}: {record.getMessage()}"


def configure_stderr(level: int = logging.INFO) -> None:
    """Default before the config is read: Dovecot's file form on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(DovecotFormatter())
    _logger.handlers[:] = [handler]
    _logger.setLevel(level)
    _logger.propagate = False
