"""dot_stuff's bytes.replace against the line-by-line rule of RFC 1939
section 3 (a line that starts with "." gets one more)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from maa_server.protocols.pop3.parser import dot_stuff


def stuff_by_lines(data: bytes) -> bytes:
    lines = data.split(b"\n")
    out = b"\n".join(b"." + line if line.startswith(b".") else line for line in lines)
    return out if not out or out.endswith(b"\r\n") else out + b"\r\n"


@given(st.lists(st.sampled_from([b".", b"..", b"a", b"\r\n", b"\n", b"\r", b" ", b".\r\n"]),
                max_size=30).map(b"".join))
def test_same_as_line_by_line(data: bytes) -> None:
    assert dot_stuff(data) == stuff_by_lines(data)


def test_dot_lines_everywhere() -> None:
    assert dot_stuff(b".\r\n.\r\n..x\r\n") == b"..\r\n..\r\n...x\r\n"
    assert dot_stuff(b"") == b""
    assert dot_stuff(b"a.b\r\n") == b"a.b\r\n"
