"""Dovecot's control files, byte for byte against files captured from Dovecot 2.3
(tests/fixtures/dovecot_maildir, see tests/interop/storage/capture_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maa_server.storage.maildir.keywords import (
    add_keywords,
    format_keywords,
    parse_keywords,
)
from maa_server.storage.maildir.subscriptions import (
    format_subscriptions,
    parse_subscriptions,
    tab_escape,
    tab_unescape,
)
from maa_server.storage.maildir.uidlist import (
    UidListCorrupt,
    UidRecord,
    format_record,
    format_uidlist,
    parse_uidlist,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dovecot_maildir"


@pytest.mark.parametrize("name", ["dovecot-uidlist", "Entw&APw-rfe__dovecot-uidlist", "Work__Sub__dovecot-uidlist"])
def test_uidlist_round_trip(name):
    raw = (FIXTURES / name).read_bytes()
    parsed = parse_uidlist(raw)
    assert parsed.version == 3 and not parsed.needs_rewrite
    assert format_uidlist(parsed, update_next=False) == raw
    # A rewrite brings N up to date (Dovecot: lines are appended without it).
    rewritten = format_uidlist(parsed).split(b" ")
    assert rewritten[2] == b"N%d" % parsed.effective_next_uid


def test_uidlist_inbox_fields():
    parsed = parse_uidlist((FIXTURES / "dovecot-uidlist").read_bytes())
    assert parsed.uidvalidity == 1795737363 and parsed.next_uid == 5 and len(parsed.guid) == 32
    assert [r.uid for r in parsed.records.values()] == [1, 2]
    assert next(iter(parsed.records)) == "1795737361.M300760P30067.vm,S=57,W=62"


def test_uidlist_spec_example_appended_lines_and_extensions():
    # Spec 5.5: lines appended without updating N; W cached for foreign names; P UIDLs.
    raw = (b"3 V1795712500 N8 Ga66d7b15f465086b9535000083ecc375\n"
           b"1 :1795712512.M823311P13991.vm,S=174,W=182\n"
           b"6 W54 :1795713000.P999Q1.otherhost\n"
           b"9 P000000016b086864 :1795713175.M757405P21042.vm,S=224,W=234\n")
    parsed = parse_uidlist(raw)
    assert parsed.effective_next_uid == 10
    rec = parsed.records["1795713000.P999Q1.otherhost"]
    assert rec.uid == 6 and rec.ext == {"W": "54"}
    assert parsed.records["1795713175.M757405P21042.vm,S=224,W=234"].ext == {"P": "000000016b086864"}
    assert format_uidlist(parsed).splitlines()[0] == b"3 V1795712500 N10 Ga66d7b15f465086b9535000083ecc375"
    assert format_record(UidRecord(7, "x", {"W": "55"})) == b"7 W55 :x\n"


def test_uidlist_unknown_header_keys_kept():
    raw = b"3 V5 N2 Gabc Xfoo\n1 :a\n"
    assert format_uidlist(parse_uidlist(raw)) == raw


def test_uidlist_broken():
    with pytest.raises(UidListCorrupt):
        parse_uidlist(b"3 V5 N2 Gabc\n2 :a\n1 :b\n")  # UIDs not ordered
    with pytest.raises(UidListCorrupt):
        parse_uidlist(b"4 V5 N2\n")
    with pytest.raises(UidListCorrupt):
        parse_uidlist(b"garbage")


def test_uidlist_incomplete_last_line_ignored():
    parsed = parse_uidlist(b"3 V5 N1 Gabc\n1 :a\n2 :b")
    assert list(parsed.records) == ["a"]


def test_uidlist_duplicate_base_later_wins():
    parsed = parse_uidlist(b"3 V5 N1 Gabc\n1 :a\n2 :a\n")
    assert parsed.records["a"].uid == 2 and parsed.needs_rewrite


def test_uidlist_version1_is_read():
    parsed = parse_uidlist(b"1 1234 7\n3 1000.P1.host:2,S\n5 1001.P2.host\n")
    assert parsed.uidvalidity == 1234 and parsed.needs_rewrite
    assert {b: r.uid for b, r in parsed.records.items()} == {"1000.P1.host": 3, "1001.P2.host": 5}


@pytest.mark.parametrize("name", ["dovecot-keywords", "Entw&APw-rfe__dovecot-keywords"])
def test_keywords_round_trip(name):
    raw = (FIXTURES / name).read_bytes()
    assert format_keywords(parse_keywords(raw)) == raw


def test_keywords_rules():
    slots = parse_keywords(b"0 $Forwarded\n2 Urgent\n30 TooHigh\n3 urgent\n4 \n")
    assert slots == ["$Forwarded", "", "Urgent"]
    slots, changed = add_keywords(slots, ["URGENT", "New", "Other"])
    # Case-insensitive match; lowest free index first; never reassigned.
    assert changed and slots == ["$Forwarded", "New", "Urgent", "Other"]
    full = [f"k{i}" for i in range(26)]
    assert add_keywords(full, ["more"]) == (full, False)


def test_subscriptions_round_trip():
    raw = (FIXTURES / "subscriptions").read_bytes()
    parsed = parse_subscriptions(raw, "/")
    assert parsed == [["Entw&APw-rfe"], ["Projects.2024"], ["INBOX"], ["Work", "Sub"]]
    assert format_subscriptions(parsed) == raw


def test_subscriptions_spec_example_and_v1():
    raw = b"V\t2\n\nEntw&APw-rfe\nProjects\t2024\nINBOX\nArchive\n"
    assert format_subscriptions(parse_subscriptions(raw, ".")) == raw
    assert parse_subscriptions(b"INBOX\nWork.Sub\n", ".") == [["INBOX"], ["Work", "Sub"]]


@given(st.text())
def test_tab_escape_round_trip(level):
    escaped = tab_escape(level)
    assert "\t" not in escaped and "\n" not in escaped
    assert tab_unescape(escaped) == level


_base = st.text(alphabet=st.characters(blacklist_characters="\n/\r", blacklist_categories=("Cs",)), min_size=1,
                max_size=40)
_ext = st.dictionaries(st.sampled_from("SWPOG"), st.text(alphabet="0123456789abcdef", max_size=10), max_size=3)


@given(st.integers(1, 2**32 - 1), st.integers(1, 10**6), st.lists(st.tuples(_base, _ext), max_size=20, unique_by=lambda t: t[0]))
def test_uidlist_format_parse_round_trip(uidvalidity, next_uid, items):
    from maa_server.storage.maildir.uidlist import UidList

    data = UidList(uidvalidity=uidvalidity, next_uid=next_uid, guid="0" * 32)
    for i, (base, ext) in enumerate(items, start=1):
        data.records[base] = UidRecord(i * 3, base, ext)
    raw = format_uidlist(data)
    parsed = parse_uidlist(raw)
    assert (parsed.uidvalidity, parsed.next_uid, parsed.guid) == (data.uidvalidity, data.next_uid, data.guid)
    assert {b: (r.uid, r.ext) for b, r in parsed.records.items()} == {b: (r.uid, r.ext) for b, r in data.records.items()}


@given(st.binary(max_size=300))
def test_uidlist_parser_never_crashes(raw):
    try:
        parse_uidlist(raw)
    except UidListCorrupt:
        pass
