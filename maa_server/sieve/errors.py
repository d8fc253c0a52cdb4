"""Errors in a Sieve script, reported as Pigeonhole does: `line N: error: ...`."""

from __future__ import annotations


class SieveError(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


class SieveRuntimeError(Exception):
    """A failure while running (e.g. too many actions): delivery falls back to keep."""


def at(line: int, message: str) -> str:
    return f"line {line}: error: {message}"
