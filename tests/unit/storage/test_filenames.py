"""Maildir file names: parsing, flag letters, generation (spec 5.2, 5.3)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from maa_server.storage.interface import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN
from maa_server.storage.maildir.filename import (
    NameGenerator,
    build_name,
    flags_to_letters,
    letters_to_flags,
    parse_name,
    sort_key,
    virtual_size,
)

KEYWORDS = ["$Forwarded", "Project_X", "$Label1", "Urgent"]


def test_parse_dovecot_names():
    p = parse_name("1795712512.M823311P13991.vm,S=174,W=182:2,Sab")
    assert (p.base, p.letters, p.size, p.vsize, p.has_info) == (
        "1795712512.M823311P13991.vm,S=174,W=182", "Sab", 174, 182, True)
    p = parse_name("1795712520.M912868P14641.vm,S=308,W=320")
    assert p.letters == "" and not p.has_info and p.vsize == 320
    p = parse_name("1795713000.P999Q1.otherhost")
    assert p.size is None and p.vsize is None
    p = parse_name("1.P1.h:2,PS,extra")
    assert p.letters == "PS" and p.tail == ",extra"


def test_letters_in_dovecot_order():
    index = {k.lower(): i for i, k in enumerate(KEYWORDS)}
    flags = frozenset({SEEN, ANSWERED, FLAGGED, "$Label1", "Urgent", "$Forwarded", "Project_X"})
    assert flags_to_letters(flags, index) == "FRSabcd"
    assert flags_to_letters(frozenset({DRAFT, DELETED}), index, unknown="P") == "DPT"
    flags, unknown = letters_to_flags("FRSabcdP", KEYWORDS)
    assert unknown == "P" and flags == {FLAGGED, ANSWERED, SEEN, *KEYWORDS}
    # A letter without a dovecot-keywords line (maildir-keywords.c).
    assert letters_to_flags("z", KEYWORDS)[0] == {"unknown-25"}


def test_build_name():
    assert build_name("b", "") == "b:2,"
    assert build_name("b", "", with_info=False) == "b"
    assert build_name("b", "S", ",x") == "b:2,S,x"


def test_generated_names_unique_and_shaped():
    gen = NameGenerator()
    names = [gen.generate(10, 12) for _ in range(1000)]
    assert len(set(names)) == 1000
    assert re.fullmatch(r"\d+\.M\d+P\d+\.[^/:]+,S=10,W=12", names[0])
    assert sorted(names, key=sort_key) == names


def test_sort_key_order():
    names = ["1795713001.P999Q2.otherhost", "1795713000.M5P1.h", "1795713000.M40P1.h", "1795713000.P999Q1.otherhost"]
    assert sorted(names, key=sort_key) == [
        "1795713000.P999Q1.otherhost", "1795713000.M5P1.h", "1795713000.M40P1.h", "1795713001.P999Q2.otherhost"]


@given(st.binary())
def test_virtual_size(data):
    assert virtual_size(data) == len(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
