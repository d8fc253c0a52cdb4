"""The kept Maildir listing (incremental rescans) and the read-ahead of
sequential message reads."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from maa_server.storage.maildir.listing import DirListing
from maa_server.storage.maildir.readahead import ReadAhead, read_files


def _full(mail_dir: str) -> dict[str, tuple[str, str]]:
    return DirListing().scan(mail_dir)


def _make(tmp_path) -> str:
    for sub in ("new", "cur", "tmp"):
        (tmp_path / sub).mkdir(exist_ok=True)
    return str(tmp_path)


def test_rescan_reports_only_what_moved(tmp_path):
    mail_dir = _make(tmp_path)
    for i in range(5):
        (tmp_path / "cur" / f"{i}.M1P1.host:2,S").write_bytes(b"x")
    listing = DirListing()
    assert len(listing.scan(mail_dir)) == 5 and listing.changes is None
    os.rename(tmp_path / "cur" / "1.M1P1.host:2,S", tmp_path / "cur" / "1.M1P1.host:2,FS")
    (tmp_path / "new" / "9.M1P1.host").write_bytes(b"y")
    os.unlink(tmp_path / "cur" / "3.M1P1.host:2,S")
    (tmp_path / "cur" / ".hidden").write_bytes(b"")
    files = listing.scan(mail_dir)
    assert listing.changes == {"1.M1P1.host", "9.M1P1.host", "3.M1P1.host"}
    assert files == _full(mail_dir)
    assert files["1.M1P1.host"] == ("cur", "1.M1P1.host:2,FS")
    assert files["9.M1P1.host"] == ("new", "9.M1P1.host")


def test_cur_wins_over_new_for_one_base(tmp_path):
    mail_dir = _make(tmp_path)
    (tmp_path / "new" / "5.M1P1.host").write_bytes(b"x")
    listing = DirListing()
    listing.scan(mail_dir)
    (tmp_path / "cur" / "5.M1P1.host:2,").write_bytes(b"x")  # moved halfway
    assert listing.scan(mail_dir)["5.M1P1.host"] == ("cur", "5.M1P1.host:2,")
    os.unlink(tmp_path / "cur" / "5.M1P1.host:2,")
    assert listing.scan(mail_dir)["5.M1P1.host"] == ("new", "5.M1P1.host")


OPS = st.lists(st.tuples(st.sampled_from(["add", "flag", "move", "del"]), st.integers(0, 7)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(OPS, min_size=1, max_size=4))
def test_incremental_scan_equals_a_full_scan(tmp_path_factory, steps):
    root = tmp_path_factory.mktemp("md")
    mail_dir = _make(root)
    listing = DirListing()
    listing.scan(mail_dir)
    for ops in steps:
        for op, n in ops:
            base = f"{n}.M{n}P1.host"
            in_new, in_cur = root / "new" / base, [p for p in (root / "cur").iterdir() if p.name.startswith(base)]
            if op == "add" and not in_new.exists() and not in_cur:
                in_new.write_bytes(b"m")
            elif op == "move" and in_new.exists() and not in_cur:
                os.rename(in_new, root / "cur" / (base + ":2,"))
            elif op == "flag" and in_cur:
                flags = "S" if in_cur[0].name.endswith(",") else ""
                os.rename(in_cur[0], root / "cur" / f"{base}:2,{flags}")
            elif op == "del":
                for p in [*in_cur, *([in_new] if in_new.exists() else [])]:
                    os.unlink(p)
        assert listing.scan(mail_dir) == _full(mail_dir)


def test_read_ahead_doubles_on_sequential_reads_and_resets_otherwise():
    order = list(range(1, 200))
    ra = ReadAhead()
    assert ra.plan(1, order) == [1]
    ra.keep([1], [b"1"], order)
    assert ra.plan(2, order) == [2, 3]
    ra.keep([2, 3], [b"2", b"3"], order)
    assert ra.take(3) == b"3"
    assert ra.plan(4, order) == [4, 5, 6, 7]
    ra.keep([4, 5, 6, 7], [b"4", b"5", None], order)  # budget stopped after 6; 6 was gone
    assert ra.take(5) == b"5" and ra.take(6) is None
    assert ra.plan(7, order)[:1] == [7] and len(ra.plan(50, order)) == 1  # out of order: back to one
    ra.keep([50], [b"50"], order)
    assert ra.plan(51, order) == [51, 52]
    ra.keep([51, 52], [b"51", b"52"], order)
    assert ra.take_after(50, 5) == [(52, b"52")] and ra.take(52) is None


def test_read_files_stops_at_the_budget_and_skips_missing(tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / f"m{i}"
        p.write_bytes(b"x" * 100)
        paths.append(str(p))
    os.unlink(paths[1])
    assert read_files(paths, budget=150) == [b"x" * 100, None, b"x" * 100, b"x" * 100]
