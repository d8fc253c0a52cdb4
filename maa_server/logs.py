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
import socket

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


# --- destinations from the configuration (spec 2.9, 6.1) ----------------
# Added by the daemon: log_path / info_log_path / debug_log_path, syslog with
# syslog_facility and instance_name as ident, log_timestamp; SIGUSR1 reopens.

SYSLOG_FACILITIES = {
    "auth": 4, "authpriv": 10, "cron": 9, "daemon": 3, "ftp": 11, "kern": 0, "lpr": 6,
    "mail": 2, "news": 7, "security": 4, "syslog": 5, "user": 1, "uucp": 8,
    **{f"local{i}": 16 + i for i in range(8)},
}


# Where syslog(3) writes. MAA_SYSLOG_SOCKET points elsewhere (systems whose
# syslog socket lives at another path; tests that read the datagrams).
SYSLOG_SOCKET_ENV = "MAA_SYSLOG_SOCKET"
DEFAULT_SYSLOG_SOCKET = "/dev/log"


class _LevelRange(logging.Filter):
    def __init__(self, levels: set[int]) -> None:
        super().__init__()
        self.levels = levels

    def filter(self, record: logging.LogRecord) -> bool:
        level = record.levelno
        if level >= logging.CRITICAL:
            level = logging.CRITICAL
        elif level >= logging.ERROR:
            level = logging.ERROR
        elif level >= logging.WARNING:
            level = logging.WARNING
        elif level >= logging.INFO:
            level = logging.INFO
        else:
            level = logging.DEBUG
        return level in self.levels


class _ReopenableFileHandler(logging.FileHandler):
    """A file log that logrotate may move away: SIGUSR1 reopens it."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


class _DovecotSyslogHandler(logging.Handler):
    """openlog(instance_name, LOG_NDELAY, facility) as Dovecot does: no
    LOG_PID; Info lines without `Info: ` (DovecotFormatter(syslog=True))."""

    PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                  logging.CRITICAL: 2}

    def __init__(self, ident: str, facility: int, address: str = "/dev/log") -> None:
        super().__init__()
        self.ident = ident
        self.facility = facility
        self.address = address
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        return sock

    def emit(self, record: logging.LogRecord) -> None:
        level = max(k for k in self.PRIORITIES if k <= max(record.levelno, logging.DEBUG))
        priority = self.facility * 8 + self.PRIORITIES[level]
        text = self.format(record).replace("\n", " ")
        data = f"<{priority}>{self.ident}: {text}".encode("utf-8", "replace")
        try:
            self.sock.send(data)
        except OSError:
            # The syslog daemon restarted (journald, rsyslog): reconnect once.
            try:
                self.sock.close()
                self.sock = self._connect()
                self.sock.send(data)
            except OSError:
                self.handleError(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


class _DovecotFileFormatter(DovecotFormatter):
    """File form; `%{usecs}` in log_timestamp is Dovecot's microseconds."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if "%{usecs}" in line:
            line = line.replace("%{usecs}", f"{int((record.created % 1) * 1_000_000):06d}", 1)
        return line


def configure_logging(cfg: object) -> None:
    """Route the `maa` logger as the config says. Raises OSError when a log
    file cannot be opened (the daemon reports it as a start-up error)."""
    get = cfg.get  # type: ignore[attr-defined]
    log_path = str(get("log_path") or "syslog")
    info_path = str(get("info_log_path") or "") or log_path
    debug_path = str(get("debug_log_path") or "") or info_path
    timestamp = str(get("log_timestamp") or "")
    facility_name = str(get("syslog_facility") or "mail")
    ident = str(get("instance_name") or "dovecot")
    want_debug = bool(get("mail_debug") is True or get("auth_debug") is True
                      or get("auth_debug_passwords") is True)

    destinations: dict[str, set[int]] = {}
    for path, levels in ((log_path, {logging.WARNING, logging.ERROR, logging.CRITICAL}),
                         (info_path, {logging.INFO}), (debug_path, {logging.DEBUG})):
        destinations.setdefault(path, set()).update(levels)

    handlers: list[logging.Handler] = []
    for path, levels in destinations.items():
        handler: logging.Handler
        if path == "syslog":
            facility = SYSLOG_FACILITIES.get(facility_name, SYSLOG_FACILITIES["mail"])
            try:
                address = os.environ.get(SYSLOG_SOCKET_ENV) or DEFAULT_SYSLOG_SOCKET
                handler = _DovecotSyslogHandler(ident, facility, address)
            except OSError:
                # No syslog daemon (containers, CI): stderr rather than silence.
                handler = logging.StreamHandler()
                handler.setFormatter(_DovecotFileFormatter(timestamp))
            else:
                handler.setFormatter(DovecotFormatter(syslog=True))
        elif path in ("/dev/stderr", "/dev/stdout"):
            import sys

            handler = logging.StreamHandler(sys.stderr if path == "/dev/stderr" else sys.stdout)
            handler.setFormatter(_DovecotFileFormatter(timestamp))
        else:
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            handler = _ReopenableFileHandler(path, encoding="utf-8")
            handler.setFormatter(_DovecotFileFormatter(timestamp))
        handler.addFilter(_LevelRange(levels))
        handlers.append(handler)

    for old in _logger.handlers:
        old.close()
    _logger.handlers[:] = handlers
    _logger.setLevel(logging.DEBUG if want_debug else logging.INFO)
    _logger.propagate = False


def reopen_logs() -> None:
    """SIGUSR1: reopen log files after logrotate moved them."""
    for handler in _logger.handlers:
        if isinstance(handler, _ReopenableFileHandler):
            handler.reopen()
