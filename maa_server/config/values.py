"""Typed setting values: parse Dovecot's value syntax and print it back as doveconf does.

Types (table.py): bool, uint, octal, port, size, time, str and `enum:a:b:c`.
Source: src/lib-settings/settings-parser.c (settings_get_bool, get_uint, get_octal,
settings_get_size, settings_get_time) and src/lib/str-parse (str_parse_get_interval).
Every parse error is a ValueError whose text is Dovecot's message."""

from __future__ import annotations

import re

Value = bool | int | float | str

SIZE_UNITS = {"B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
SIZE_NAMES = (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("k", 1024))
# Unit words; any prefix of these spellings is accepted (checked in this order,
# so "m" is minutes, as in Dovecot).
TIME_WORDS = ((("seconds", "secs"), 1), (("minutes", "mins"), 60), (("hours",), 3600),
              (("days",), 86400), (("weeks",), 604800))
TIME_NAMES = (("weeks", 604800), ("days", 86400), ("hours", 3600), ("mins", 60), ("secs", 1))
MSEC_WORDS = ("ms", "msec", "msecs", "millisecond", "milliseconds")
_NUMBER_UNIT = re.compile(r"^(\d+)\s*(.*)$")
UINT_MAX = 2**64 - 1


def parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("yes", "y") or text == "1":
        return True
    if low == "no":
        return False
    raise ValueError(f"Invalid boolean value: {text} (use yes or no)")


def parse_uint(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"Invalid number {text}: Not a valid number")
    value = int(text)
    if value > UINT_MAX:
        raise ValueError(f"Invalid number {text}: Number too large")
    return value


def parse_octal(text: str) -> int:
    """File modes: a leading 0 means octal (`0666`), otherwise decimal."""
    if text.startswith("0") and len(text) > 1:
        if not re.fullmatch(r"[0-7]+", text):
            raise ValueError(f"Invalid number {text}: Not a valid octal number")
        return int(text, 8)
    return parse_uint(text)


def parse_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise ValueError(f"Invalid port number {text}")
    return int(text)


def parse_size(text: str) -> int:
    """`10M`, `64 k`, `1MiB`, `1000` (bytes) -> bytes."""
    match = _NUMBER_UNIT.match(text)
    if not match:
        raise ValueError(f"Invalid size: {text}")
    number, unit = int(match.group(1)), match.group(2)
    multiply = 1
    if unit:
        multiply = SIZE_UNITS.get(unit[0].upper(), 0)
        if not multiply:
            raise ValueError(f"Invalid size: {text}")
        rest = unit[1:]
        if multiply > 1 and rest[:1] in ("i", "I"):
            rest = rest[1:]
        if multiply > 1 and rest[:1] in ("b", "B"):
            rest = rest[1:]
        if rest:
            raise ValueError(f"Invalid size: {text}")
    value = number * multiply
    if value > UINT_MAX:
        raise ValueError(f"Invalid size: {text}")
    return value


def parse_time(text: str, msecs: bool = False) -> float:
    """`2 secs`, `1h`, `500ms` -> seconds (float). A bare non-zero number is an error."""
    match = _NUMBER_UNIT.match(text)
    if not match:
        raise ValueError(f"Invalid time interval: {text}")
    number, unit = int(match.group(1)), match.group(2).lower()
    if not unit:
        if number == 0:
            return 0.0
        raise ValueError(f"Time interval '{text}' is missing units (add e.g. 's' for seconds)")
    if unit in MSEC_WORDS:
        if not msecs and number % 1000 != 0:
            raise ValueError(f"Milliseconds not supported for this setting: {text}")
        return number / 1000
    for spellings, seconds in TIME_WORDS:
        if any(word.startswith(unit) for word in spellings):
            return float(number * seconds)
    raise ValueError(f"Invalid time interval: {text}")


def parse_value(type_name: str, text: str) -> Value:
    """The typed value of `text` for a setting of type `type_name`."""
    if type_name == "str":
        return text
    if type_name == "bool":
        return parse_bool(text)
    if type_name == "uint":
        return parse_uint(text)
    if type_name == "octal":
        return parse_octal(text)
    if type_name == "port":
        return parse_port(text)
    if type_name == "size":
        return parse_size(text)
    if type_name == "time":
        return parse_time(text)
    if type_name == "time_msecs":
        return parse_time(text, msecs=True)
    if type_name == "verbose_passwords":
        # auth_settings_check(): no / yes (= plain) / plain / sha1, optionally `:<truncate>`
        if not re.fullmatch(r"(no|yes|plain|sha1)(:\d+)?", text):
            raise ValueError(f"auth_verbose_passwords: Invalid value '{text}'")
        return text
    if type_name.startswith("enum:"):
        if text not in type_name[5:].split(":"):
            raise ValueError(f"Invalid value: {text}")
        return text
    raise ValueError(f"Unknown setting type {type_name}")


def format_size(value: int) -> str:
    if value == 0:
        return "0"
    for name, unit in SIZE_NAMES:
        if value % unit == 0:
            return f"{value // unit} {name}"
    return f"{value} B"


def format_time(seconds: float) -> str:
    if seconds == 0:
        return "0"
    if seconds != int(seconds):
        return f"{round(seconds * 1000)} ms"
    whole = int(seconds)
    for name, unit in TIME_NAMES:
        if whole % unit == 0:
            return f"{whole // unit} {name}"
    return f"{whole} secs"  # unreachable: every integer divides by 1


def format_value(type_name: str, value: Value) -> str:
    """doveconf's printed form of a typed value (`64 k`, `2 mins`, `yes`, `0600`)."""
    if type_name == "bool":
        return "yes" if value else "no"
    if type_name == "size":
        return format_size(int(value))
    if type_name in ("time", "time_msecs"):
        return format_time(float(value))
    if type_name == "octal":
        return f"0{int(value):o}"
    return str(value)


def normalize(type_name: str, text: str) -> str:
    """The doveconf form of a raw value (`128k` -> `128 k`); raw text if it does not parse."""
    if type_name in ("str", "verbose_passwords") or type_name.startswith("enum:"):
        return text
    try:
        return format_value(type_name, parse_value(type_name, text))
    except ValueError:
        return text
