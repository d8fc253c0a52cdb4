"""The `subscriptions` file, version 2 (and version 1 read), no I/O here.

Dovecot source: src/lib-storage/list/subscription-file.c. Spec 5.8. Levels of
a name are separated by TAB, each level tab-escaped; names are storage names
(modified UTF-7 unless `UTF-8`).
"""

from __future__ import annotations

HEADER = b"V\t2\n\n"

_ESCAPES = {"\x01": "\x011", "\t": "\x01t", "\r": "\x01r", "\n": "\x01n"}
_UNESCAPES = {"1": "\x01", "t": "\t", "r": "\r", "n": "\n"}


def tab_escape(level: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in level)


def tab_unescape(level: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(level):
        ch = level[i]
        if ch == "\x01" and i + 1 < len(level):
            out.append(_UNESCAPES.get(level[i + 1], level[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_subscriptions(data: bytes, v1_separator: str) -> list[list[str]]:
    """Each subscription as its list of storage-name levels, in file order."""
    text = data.decode("utf-8", "surrogateescape")
    result: list[list[str]] = []
    if data.startswith(HEADER):
        for line in text[len(HEADER):].split("\n"):
            if line:
                result.append([tab_unescape(level) for level in line.split("\t")])
        return result
    # Version 1: one full name per line with the separator inside.
    for line in text.split("\n"):
        if line:
            result.append(line.split(v1_separator))
    return result


def format_subscriptions(names: list[list[str]]) -> bytes:
    lines = ["\t".join(tab_escape(level) for level in levels) + "\n" for levels in names]
    return HEADER + "".join(lines).encode("utf-8", "surrogateescape")
