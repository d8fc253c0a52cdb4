"""Random command lines over a live session: every one gets a tagged answer
(never an internal error), and the session keeps working afterwards."""

from __future__ import annotations

import random

from tests.integration.imap.harness import ImapServer, Wire

WORDS = ["FETCH", "UID", "STORE", "SEARCH", "COPY", "MOVE", "LIST", "LSUB", "STATUS", "SELECT",
         "EXAMINE", "CREATE", "DELETE", "RENAME", "EXPUNGE", "ENABLE", "ID", "NOOP", "CLOSE",
         "UNSELECT", "NAMESPACE", "SUBSCRIBE", "CHECK", "1", "*", "1:*", "$", "0", "(", ")", '""',
         "NIL", "INBOX", "(FLAGS)", "BODY[]", "BODY.PEEK[HEADER.FIELDS (A)]<0.5>", "+FLAGS",
         "(\\Seen)", "RETURN", "(MIN)", "CHARSET", "UTF-8", "ALL", "(CHANGEDSINCE", "1)",
         "(UNCHANGEDSINCE 0)", "(QRESYNC (1 1))", "\\Recent", '"a\\"b"', "%", "4294967296", "-1",
         "\x01", "ÿ", "SORT", "THREAD", "REFERENCES", "REFS", "ORDEREDSUBJECT", "(SUBJECT)",
         "(REVERSE DATE)", "(DISPLAYFROM)", "PREVIEW", "(PREVIEW (LAZY))", "SNIPPET", "XLIST",
         "GETMETADATA", "CANCELUPDATE", "MODSEQ", "(SAVE)", "(ALL COUNT)"]


def test_random_commands_never_break_the_session(server: ImapServer):
    w = Wire(server.port)
    try:
        w.login()
        w.send(b"x APPEND INBOX {5+}\r\nhello\r\n")
        w.until("x")
        rnd = random.Random(7)
        for i in range(400):
            line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 6)))
            tag = f"f{i}"
            w.send(f"{tag} {line}\r\n".encode())
            last = w.until(tag)[-1]
            assert last.split(" ")[1] in ("OK", "NO", "BAD"), (line, last)
            assert "SERVERBUG" not in last, (line, last)
            if i % 10 == 9:
                w.cmd("NOOP")  # 20 BADs in a row would end the session (as Dovecot)
        assert w.cmd("NOOP")[-1].split(" ")[1] == "OK"
    finally:
        w.close()


def test_twenty_bad_commands_in_a_row_end_the_session(wire: Wire):
    wire.login()
    for i in range(19):
        assert wire.cmd("BOGUS")[-1].startswith(f"t{i + 2} BAD ")
    wire.send(b"last BOGUS\r\n")
    assert wire.readline().startswith("last BAD ")
    assert wire.readline() == "* BYE Too many invalid IMAP commands."


def test_pre_login_parse_errors_in_imap_logins_words(wire):
    """imap-login answers a line its parser refuses with the parser's own
    text, bare (observed from Dovecot 2.3.19); the session goes on."""
    wire.send(b"a1 LOGIN h\xc3\xa9llo x\r\n")
    assert wire.readline() == "a1 BAD 8bit data in atom"
    wire.send(b"a2 FOO bar)\r\n")
    assert wire.readline() == "a2 BAD Unexpected ')'"
    assert wire.cmd("NOOP")[-1] == "t1 OK NOOP completed."
