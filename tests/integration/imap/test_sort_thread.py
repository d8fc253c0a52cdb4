"""SORT / ESORT / THREAD (RFC 5256, RFC 5267, RFC 5957) and FETCH PREVIEW
over real sockets, with imapclient and raw lines. The answers are the ones
the real Dovecot 2.3 gives for these messages (test_dovecot_parity.py
checks that side by side where Dovecot is installed)."""

from __future__ import annotations

import imaplib

import pytest

from tests.integration.imap.harness import PASSWORD, ImapServer, Wire
from tests.integration.imap.test_mailboxes import answers

MESSAGES = [
    (b"From: zed@example.org\r\nSubject: hello\r\nDate: Mon, 01 Jun 2024 10:00:00 +0000\r\n"
     b"Message-ID: <m1@example.org>\r\n\r\nBody one.\r\n"),
    (b"From: amy@example.org\r\nSubject: Re: hello\r\nDate: Mon, 02 Jun 2024 10:00:00 +0000\r\n"
     b"Message-ID: <m2@example.org>\r\nIn-Reply-To: <m1@example.org>\r\n\r\nBody two.\r\n"),
    (b"From: bob@example.org\r\nSubject: other\r\nDate: Mon, 03 Jun 2024 10:00:00 +0000\r\n"
     b"Message-ID: <m3@example.org>\r\n\r\n> quoted\r\nBody three.\r\n"),
    (b"From: cat@example.org\r\nSubject: hello again\r\nDate: Mon, 04 Jun 2024 10:00:00 +0000\r\n"
     b"Message-ID: <m4@example.org>\r\n\r\nBody four.\r\n"),
    (b"From: amy@example.org\r\nSubject: Fwd: other\r\nDate: Mon, 05 Jun 2024 10:00:00 +0000\r\n"
     b"Message-ID: <m5@example.org>\r\nReferences: <m3@example.org>\r\n\r\nBody five.\r\n"),
]


@pytest.fixture
def filled(server: ImapServer) -> ImapServer:
    with imaplib.IMAP4("127.0.0.1", server.port) as m:
        m.login("alice", PASSWORD)
        for data in MESSAGES:
            m.append("INBOX", None, None, data)
    return server


def test_capabilities_after_login(filled: ImapServer, wire: Wire) -> None:
    caps = answers(wire, "LOGIN alice " + PASSWORD)[-1]
    for word in ("SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=REFS",
                 "THREAD=ORDEREDSUBJECT", "ESORT", "I18NLEVEL=1", "PREVIEW", "SNIPPET=FUZZY"):
        assert f" {word} " in caps


def test_sort_and_thread_with_imapclient(filled: ImapServer) -> None:
    imapclient = pytest.importorskip("imapclient")
    c = imapclient.IMAPClient("127.0.0.1", port=filled.port, ssl=False)
    try:
        c.login("alice", PASSWORD)
        c.select_folder("INBOX")
        # RFC 5256 2.1: "Re: hello" and "Fwd: other" sort by their base subject.
        assert c.sort(["SUBJECT"]) == [1, 2, 4, 3, 5]
        assert c.sort(["REVERSE", "DATE"]) == [5, 4, 3, 2, 1]
        assert c.sort(["FROM", "DATE"], ["UNSEEN"]) == [2, 5, 3, 4, 1]
        assert c.sort(["SIZE"], ["SUBJECT", "hello"]) == sorted(
            [1, 2, 4], key=lambda n: (len(MESSAGES[n - 1]), n))
        assert c.thread("REFERENCES") == ((1, 2), (3, 5), (4,))
        assert c.thread("ORDEREDSUBJECT") == ((1, 2), (3, 5), (4,))
        assert c.thread("REFS") == ((1, 2), (4,), (3, 5))
    finally:
        c.logout()


def test_esort_uid_sort_and_saved_result(filled: ImapServer, wire: Wire) -> None:
    wire.login()
    wire.cmd("SELECT INBOX")
    assert answers(wire, "SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL")[0] == \
        '* ESEARCH (TAG "t3") MIN 1 MAX 5 ALL 1:2,4,3,5 COUNT 5'
    assert answers(wire, "UID SORT RETURN (ALL) (REVERSE ARRIVAL) UTF-8 ALL")[0] == \
        '* ESEARCH (TAG "t4") UID ALL 5,4,3,2,1'
    # RFC 5182 with RFC 5267: SAVE with MIN keeps the first sorted message.
    assert answers(wire, "SORT RETURN (SAVE MIN) (FROM) UTF-8 ALL")[0] == \
        '* ESEARCH (TAG "t5") MIN 2'
    assert answers(wire, "SEARCH $")[0] == "* SEARCH 2"
    assert answers(wire, "UID THREAD REFERENCES UTF-8 ALL")[0] == "* THREAD (1 2)(3 5)(4)"
    assert answers(wire, "SORT (DISPLAYFROM) UTF-8 1:2")[0] == "* SORT 2 1"
    assert answers(wire, "SORT (SUBJECT) UTF-8 MODSEQ 1")[:2] == [
        "* OK [HIGHESTMODSEQ 6] Highest", "* SORT 1 2 4 3 5 (MODSEQ 6)"]
    assert answers(wire, "THREAD FOO UTF-8 ALL") == [
        "t10 BAD Error in IMAP command THREAD: Unknown thread algorithm"]


def test_no_expunge_during_sort_but_after_uid_sort(filled: ImapServer, wire: Wire) -> None:
    wire.login()
    wire.cmd("SELECT INBOX")
    other = Wire(filled.port)
    try:
        other.login()
        other.cmd("SELECT INBOX")
        other.cmd("STORE 5 +FLAGS.SILENT (\\Deleted)")
        other.cmd("EXPUNGE")
    finally:
        other.close()
    # RFC 3501 7.4.1: SORT keeps the numbers the client knows...
    lines = answers(wire, "SORT (SUBJECT) UTF-8 ALL")
    assert not any(line.endswith("EXPUNGE") for line in lines)
    # ...a UID command may tell (Dovecot does).
    assert "* 5 EXPUNGE" in answers(wire, "UID SORT (SUBJECT) UTF-8 ALL")


def test_preview(filled: ImapServer, wire: Wire) -> None:
    wire.login()
    wire.cmd("EXAMINE INBOX")
    assert answers(wire, "FETCH 3 (UID PREVIEW (LAZY) SNIPPET (FUZZY))")[0] == \
        '* 3 FETCH (UID 3 PREVIEW "Body three." SNIPPET (FUZZY "Body three."))'
