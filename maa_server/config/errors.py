"""ConfigError: the one exception the configuration reader raises for bad input."""

from __future__ import annotations


class ConfigError(Exception):
    """A fatal configuration problem, printed as one Dovecot-shaped line.

    Dovecot (src/config/config-parser.c) reports
    `Error in configuration file <path> line <n>: <message>`; errors that have no
    line (a missing `}` at end of file) drop the `line <n>` part."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        if self.line is None:
            return f"Error in configuration file {self.file}: {self.message}"
        return f"Error in configuration file {self.file} line {self.line}: {self.message}"
