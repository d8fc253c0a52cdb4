"""Our ENVELOPE/BODY/BODYSTRUCTURE/sections against Dovecot 2.3's own answers.

tests/fixtures/mime/dovecot_answers.json was captured from Dovecot 2.3.19.1
by tests/fixtures/mime/capture_dovecot.py for every *.eml in that directory;
each value must match byte for byte (large ones by sha256).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import pytest

from maa_server.storage.message import (
    MessageStructure,
    crlf_size,
    get_section,
    parse_mime,
    parse_structure,
    section_of,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mime"
ANSWERS = json.loads((FIXTURES / "dovecot_answers.json").read_text())["messages"]
NAMES = sorted(ANSWERS)


@cache
def raw_of(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@cache
def structure_of(name: str) -> MessageStructure:
    return parse_structure(raw_of(name))


def assert_same(expected: object, got: bytes) -> None:
    if isinstance(expected, dict):
        assert len(got) == expected["len"]
        assert hashlib.sha256(got).hexdigest() == expected["sha256"]
    else:
        assert isinstance(expected, str)
        assert got == expected.encode("latin-1")


def split_section(section: str) -> tuple[tuple[int, ...], str, list[str]]:
    """ "2.HEADER.FIELDS (A B)" -> ((2,), "HEADER.FIELDS", ["A", "B"])."""
    spec, _, flist = section.partition(" (")
    fields = flist.rstrip(")").split()
    parts: list[int] = []
    while spec and spec[0].isdigit():
        num, _, spec = spec.partition(".")
        parts.append(int(num))
    return tuple(parts), spec, fields


def test_corpus_is_complete() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.eml")) == NAMES


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("item", ["envelope", "body", "bodystructure"])
def test_structure_matches_dovecot(name: str, item: str) -> None:
    assert_same(ANSWERS[name][item], getattr(structure_of(name), item))


@pytest.mark.parametrize("name", NAMES)
def test_rfc822_size_matches_dovecot(name: str) -> None:
    assert crlf_size(raw_of(name)) == ANSWERS[name]["size"]


@pytest.mark.parametrize("name", NAMES)
def test_sections_match_dovecot(name: str) -> None:
    raw = raw_of(name)
    tree = parse_mime(raw)  # one parse for all sections, as FETCH does
    for section, expected in ANSWERS[name]["sections"].items():
        part, spec, fields = split_section(section)
        got = section_of(raw, tree, part, spec, fields)
        if len(raw) < 100_000:  # the one-shot API gives the same
            assert got == get_section(raw, part, spec, fields)
        if expected is None:
            assert got == b"", section
        else:
            try:
                assert_same(expected, got)
            except AssertionError as exc:
                raise AssertionError(f"BODY[{section}] differs") from exc
