"""APPEND (APPENDUID, MULTIAPPEND), FETCH/SEARCH through the session, STORE,
COPY (COPYUID), MOVE, EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT, CONDSTORE/QRESYNC,
ESEARCH -- with imaplib, imapclient and raw lines."""

from __future__ import annotations

import imaplib
import re

import pytest

from tests.integration.imap.harness import PASSWORD, ImapServer, Wire
from tests.integration.imap.test_mailboxes import answers

MSG = b"From: Bob <bob@example.org>\r\nSubject: Hello %d\r\n\r\nBody %d\r\n"


def fill(server: ImapServer, n: int, box: str = "INBOX") -> None:
    with imaplib.IMAP4("127.0.0.1", server.port) as m:
        m.login("alice", PASSWORD)
        for i in range(1, n + 1):
            m.append(box, None, None, MSG % (i, i))


def test_append_appenduid_and_rfc3501_example(server: ImapServer, wire: Wire):
    wire.login()
    msg = (b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar "
           b"<foobar@Blurdybloop.COM>\r\nSubject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu\r\n"
           b"Message-Id: <B27397-0100000@Blurdybloop.COM>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can "
           b"meet at 3:30 tomorrow?\r\n")
    wire.send(b'A003 APPEND INBOX (\\Seen $Forwarded) "07-Feb-1994 21:52:25 -0800" {%d}\r\n'
              % len(msg))
    assert wire.readline() == "+ OK"
    wire.send(msg + b"\r\n")
    reply = wire.until("A003")[-1]
    assert re.match(r"A003 OK \[APPENDUID \d+ 1\] Append completed", reply)
    lines = answers(wire, "SELECT INBOX")
    assert lines[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)"
    lines = answers(wire, "FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert lines[0].startswith("* 1 FETCH (FLAGS (\\Seen \\Recent $Forwarded) INTERNALDATE ")
    assert lines[0].endswith(f" RFC822.SIZE {len(msg)})")


def test_multiappend_and_trycreate(wire: Wire):
    wire.login()
    wire.send(b"a APPEND INBOX {5+}\r\nhello {5+}\r\nworld\r\n")
    assert re.match(r"a OK \[APPENDUID \d+ 1:2\] Append completed", wire.until("a")[-1])
    wire.send(b"b APPEND Missing {5+}\r\nhello\r\n")
    assert wire.until("b")[-1].startswith("b NO [TRYCREATE] Mailbox doesn't exist: Missing")
    wire.send(b"c APPEND INBOX {0+}\r\n\r\n")
    assert wire.until("c")[-1].startswith("c NO ")


def test_fetch_store_search_expunge_with_imaplib(server: ImapServer):
    fill(server, 4)
    with imaplib.IMAP4("127.0.0.1", server.port) as m:
        m.login("alice", PASSWORD)
        assert m.select("INBOX") == ("OK", [b"4"])
        _, data = m.uid("FETCH", "1:*", "(FLAGS)")
        assert data[0] == b"1 (UID 1 FLAGS (\\Recent))"
        _, data = m.fetch("2", "(BODY[HEADER.FIELDS (SUBJECT)])")
        assert data[0][1] == b"Subject: Hello 2\r\n\r\n"
        _, data = m.fetch("2", "(BODY[TEXT])")
        assert data[0][1] == b"Body 2\r\n"
        _, data = m.fetch("2", "(FLAGS)")
        assert b"\\Seen" in data[0]  # BODY[] (not PEEK) set \Seen
        assert m.search(None, "UNSEEN") == ("OK", [b"1 3 4"])
        assert m.uid("SEARCH", "SUBJECT", "Hello 3") == ("OK", [b"3"])
        _, data = m.store("1:2", "+FLAGS", "(\\Deleted)")
        assert data == [b"1 (FLAGS (\\Deleted \\Recent))", b"2 (FLAGS (\\Deleted \\Seen \\Recent))"]
        _, data = m.expunge()
        assert data == [b"2", b"1"]  # highest first, so no number shifts (as Dovecot)
        assert m.uid("SEARCH", "ALL") == ("OK", [b"3 4"])


def test_bad_sequence_number(server: ImapServer, wire: Wire):
    fill(server, 1)
    wire.login()
    wire.cmd("SELECT INBOX")
    assert answers(wire, "FETCH 5 FLAGS") == ["t3 BAD Error in IMAP command FETCH: Invalid messageset"]
    assert answers(wire, "UID FETCH 5 FLAGS") == ["t4 OK Fetch completed"]
    # UID n:* names the last message even when n is past it (RFC 3501 6.4.8).
    assert answers(wire, "UID FETCH 3:* (FLAGS)")[0] == "* 1 FETCH (UID 1 FLAGS (\\Recent))"


def test_copy_move_uidplus(server: ImapServer, wire: Wire):
    fill(server, 3)
    wire.login()
    wire.cmd("SELECT INBOX")
    lines = answers(wire, "COPY 1:2 Trash")
    assert re.fullmatch(r"t3 OK \[COPYUID \d+ 1:2 1:2\] Copy completed", lines[-1])
    lines = answers(wire, "UID MOVE 3 Trash")
    assert re.fullmatch(r"\* OK \[COPYUID \d+ 3 3\] Moved UIDs\.", lines[0])
    # The moved message was \Recent here: Dovecot follows with the new count.
    assert lines[1:] == ["* 3 EXPUNGE", "* 2 RECENT", "t4 OK Move completed"]
    assert answers(wire, "COPY 1 Nowhere")[-1].startswith("t5 NO [TRYCREATE]")
    assert answers(wire, "STATUS Trash (MESSAGES)")[0] == "* STATUS Trash (MESSAGES 3)"


def test_uid_expunge_close_unselect(server: ImapServer, wire: Wire):
    fill(server, 3)
    wire.login()
    wire.cmd("SELECT INBOX")
    wire.cmd("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    assert answers(wire, "UID EXPUNGE 2") == ["* 2 EXPUNGE", "* 2 RECENT",
                                              "t4 OK Expunge completed"]
    assert answers(wire, "UNSELECT") == ["t5 OK Unselect completed"]
    assert answers(wire, "EXPUNGE") == ["t6 BAD No mailbox selected"]
    wire.cmd("SELECT INBOX")
    assert answers(wire, "CLOSE") == ["t8 OK Close completed"]
    lines = answers(wire, "STATUS INBOX (MESSAGES)")
    assert lines[0] == "* STATUS INBOX (MESSAGES 0)"


def test_store_variants_and_keywords(server: ImapServer, wire: Wire):
    fill(server, 2)
    wire.login()
    wire.cmd("SELECT INBOX")
    # A new keyword: FLAGS and PERMANENTFLAGS first, then the FETCH (as Dovecot).
    lines = answers(wire, "STORE 1 FLAGS (\\Flagged $Label1)")
    assert lines[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)"
    assert lines[2] == "* 1 FETCH (FLAGS (\\Flagged \\Recent $Label1))"
    assert answers(wire, "UID STORE 1 -FLAGS (\\Flagged)")[0] == \
        "* 1 FETCH (UID 1 FLAGS (\\Recent $Label1))"
    assert answers(wire, "STORE 2 +FLAGS.SILENT (\\Seen)") == ["t5 OK Store completed"]
    assert answers(wire, "STORE 1 +FLAGS (\\Recent)")[-1].startswith("t6 BAD ")
    assert answers(wire, "STORE 1 BOGUS (\\Seen)")[-1].startswith("t7 BAD ")


def test_condstore_unchangedsince_and_changedsince(server: ImapServer, wire: Wire):
    fill(server, 2)
    wire.login()
    assert answers(wire, "ENABLE CONDSTORE") == ["* ENABLED CONDSTORE", "t2 OK Enabled"]
    lines = answers(wire, "SELECT INBOX")
    hms = [x for x in lines if x.startswith("* OK [HIGHESTMODSEQ ")]
    assert hms
    fetched = answers(wire, "FETCH 1:2 (MODSEQ)")
    mod1 = int(re.search(r"MODSEQ \((\d+)\)", fetched[0]).group(1))
    assert answers(wire, f"STORE 1 (UNCHANGEDSINCE {mod1}) +FLAGS (\\Seen)")[-1] == \
        "t5 OK Store completed"
    lines = answers(wire, f"STORE 1 (UNCHANGEDSINCE {mod1}) +FLAGS (\\Flagged)")
    assert lines[-1] == "t6 OK [MODIFIED 1] Conditional store failed"
    mod2 = int(re.search(r"MODSEQ \((\d+)\)", fetched[1]).group(1))
    lines = answers(wire, f"FETCH 1:* (FLAGS) (CHANGEDSINCE {mod2})")
    assert len(lines) == 2 and lines[0].startswith("* 1 FETCH (") and "MODSEQ (" in lines[0]


def test_qresync_select_and_vanished(server: ImapServer, wire: Wire):
    fill(server, 3)
    wire.login()
    wire.cmd("ENABLE QRESYNC")
    lines = answers(wire, "SELECT INBOX")
    uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", " ".join(lines)).group(1))
    wire.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
    lines = answers(wire, "EXPUNGE")
    assert lines[:2] == ["* VANISHED 2", "* 2 RECENT"]  # as Dovecot, RECENT too
    assert re.fullmatch(r"t5 OK \[HIGHESTMODSEQ \d+\] Expunge completed", lines[2])
    lines = answers(wire, f"SELECT INBOX (QRESYNC ({uidvalidity} 1 1:3))")
    assert "* VANISHED (EARLIER) 2" in lines
    assert lines[-1] == "t6 OK [READ-WRITE] Select completed"
    lines = answers(wire, "UID FETCH 1:3 (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert lines[0] == "* VANISHED (EARLIER) 2"


def test_esearch_and_searchres(server: ImapServer, wire: Wire):
    fill(server, 5)
    wire.login()
    wire.cmd("SELECT INBOX")
    lines = answers(wire, "SEARCH RETURN (MIN MAX COUNT ALL) ALL")
    assert lines[0] == '* ESEARCH (TAG "t3") MIN 1 MAX 5 ALL 1:5 COUNT 5'
    lines = answers(wire, "UID SEARCH RETURN (COUNT) SUBJECT nothing-like-this")
    assert lines[0] == '* ESEARCH (TAG "t4") UID COUNT 0'
    assert answers(wire, "SEARCH RETURN (SAVE) 2:3") == ["t5 OK Search completed"]
    lines = answers(wire, "FETCH $ (UID)")
    assert lines[:2] == ["* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"]
    assert answers(wire, "SEARCH CHARSET KOI8-ZZ ALL") == ["t7 NO [BADCHARSET] Unknown charset"]


def test_imapclient_round(server: ImapServer):
    imapclient = pytest.importorskip("imapclient")
    fill(server, 2)
    c = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
    try:
        c.login("alice", PASSWORD)
        info = c.select_folder("INBOX")
        assert info[b"EXISTS"] == 2
        assert c.search(["ALL"]) == [1, 2]
        data = c.fetch([1], ["ENVELOPE", "RFC822.SIZE"])
        assert data[1][b"ENVELOPE"].subject == b"Hello 1"
        c.add_flags([2], [imapclient.SEEN])
        assert imapclient.SEEN in c.get_flags([2])[2]
        c.create_folder("Archive")
        c.move([1], "Archive")
        assert c.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] == 1
        assert c.has_capability("IDLE")
    finally:
        c.logout()
