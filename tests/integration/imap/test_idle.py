"""IDLE (RFC 2177) and two sessions on one mailbox (RFC 3501 5.2, 7.4.1):
what one session changes shows up in the other at the allowed points."""

from __future__ import annotations

import imaplib

from tests.integration.imap.harness import PASSWORD, ImapServer, Wire
from tests.integration.imap.test_mailboxes import answers, strip_timing
from tests.integration.imap.test_messages import fill


def test_idle_reports_append_flags_and_expunge(server: ImapServer):
    fill(server, 2)
    watcher, actor = Wire(server.port), Wire(server.port)
    try:
        watcher.login()
        actor.login()
        watcher.cmd("SELECT INBOX")
        actor.cmd("SELECT INBOX")
        watcher.send(b"i1 IDLE\r\n")
        assert watcher.readline() == "+ idling"
        actor.cmd("STORE 1 +FLAGS (\\Flagged)")
        # The watcher selected first, so the messages are \Recent for it.
        assert watcher.readline() == "* 1 FETCH (FLAGS (\\Flagged \\Recent))"
        actor.send(b"a APPEND INBOX {5+}\r\nhello\r\n")
        actor.until("a")
        # No RECENT: the watcher's count did not move (the actor claimed the
        # new message), and Dovecot then sends none.
        assert watcher.readline() == "* 3 EXISTS"
        actor.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
        assert watcher.readline() == "* 2 FETCH (FLAGS (\\Deleted \\Recent))"
        actor.cmd("EXPUNGE")
        assert watcher.readline() == "* 2 EXPUNGE"
        assert watcher.readline() == "* 1 RECENT"
        watcher.send(b"DONE\r\n")
        assert watcher.until("i1")[-1].startswith("i1 OK Idle completed")
    finally:
        watcher.close()
        actor.close()


def test_idle_wrong_continuation(server: ImapServer, wire: Wire):
    wire.login()
    wire.send(b"i IDLE\r\n")
    assert wire.readline() == "+ idling"
    wire.send(b"NOPE\r\n")
    assert [strip_timing(x) for x in wire.until("i")] == ["i BAD Expected DONE"]


def test_no_expunge_during_fetch_but_after_noop(server: ImapServer):
    fill(server, 3)
    reader, writer = Wire(server.port), Wire(server.port)
    try:
        reader.login()
        writer.login()
        reader.cmd("SELECT INBOX")
        writer.cmd("SELECT INBOX")
        writer.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        writer.cmd("EXPUNGE")
        lines = answers(reader, "FETCH 1:* (UID)")
        assert not any("EXPUNGE" in x for x in lines)
        assert lines[:3] == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"]
        lines = answers(reader, "NOOP")
        assert "* 1 EXPUNGE" in lines
        assert answers(reader, "FETCH 1:* (UID)")[:2] == ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]
    finally:
        reader.close()
        writer.close()


def test_recent_belongs_to_one_session(server: ImapServer):
    fill(server, 1)
    first, second = imaplib.IMAP4("127.0.0.1", server.port), imaplib.IMAP4("127.0.0.1", server.port)
    try:
        first.login("alice", PASSWORD)
        second.login("alice", PASSWORD)
        first.select("INBOX")
        assert first.untagged_responses.get("RECENT") == [b"1"]
        second.select("INBOX")
        assert second.untagged_responses.get("RECENT") == [b"0"]
    finally:
        first.logout()
        second.logout()


def test_idle_sees_delivery_by_another_process(server: ImapServer):
    # A file dropped into new/ as an outside LDA (or Dovecot) would do it.
    w = Wire(server.port)
    try:
        w.login()
        assert "* 0 EXISTS" in w.cmd("SELECT INBOX")
        w.send(b"i IDLE\r\n")
        assert w.readline() == "+ idling"
        new = server.maildir("alice") / "new"
        tmp = server.maildir("alice") / "tmp" / "1700000000.M1P1.outside"
        tmp.write_bytes(b"Subject: from outside\n\nhi\n")
        tmp.rename(new / tmp.name)
        assert w.readline() == "* 1 EXISTS"
        assert w.readline() == "* 1 RECENT"
        w.send(b"DONE\r\n")
        assert w.until("i")[-1].startswith("i OK Idle completed")
        assert w.cmd("UID FETCH 1:* (FLAGS)")[0] == "* 1 FETCH (UID 1 FLAGS (\\Recent))"
    finally:
        w.close()


def test_idle_keepalive(make_server):
    srv = make_server("imap_idle_notify_interval = 1 secs")
    w = Wire(srv.port)
    try:
        w.login()
        w.send(b"i IDLE\r\n")
        assert w.readline() == "+ idling"
        assert w.readline() == "* OK Still here"
        w.send(b"DONE\r\n")
        assert w.until("i")[-1].startswith("i OK Idle completed")
    finally:
        w.close()


def test_idle_with_qresync_tells_vanished_and_highestmodseq(server: ImapServer):
    """RFC 7162 3.2.10: in IDLE, VANISHED instead of EXPUNGE, then the new
    HIGHESTMODSEQ untagged (Dovecot: `* OK [HIGHESTMODSEQ n] Highest`)."""
    fill(server, 3)
    watcher, actor = Wire(server.port), Wire(server.port)
    try:
        watcher.login()
        actor.login()
        watcher.cmd("ENABLE QRESYNC")
        lines = answers(watcher, "SELECT INBOX")
        assert "* OK [HIGHESTMODSEQ 4] Highest" in lines  # three APPENDs after creation
        actor.cmd("SELECT INBOX")
        watcher.send(b"i1 IDLE\r\n")
        assert watcher.readline() == "+ idling"
        actor.cmd("STORE 2 +FLAGS (\\Flagged)")
        assert watcher.readline() == "* 2 FETCH (UID 2 MODSEQ (5) FLAGS (\\Flagged \\Recent))"
        actor.cmd("EXPUNGE")  # nothing deleted: no change, nothing to tell
        actor.cmd("STORE 3 +FLAGS.SILENT (\\Deleted)")
        assert watcher.readline() == "* 3 FETCH (UID 3 MODSEQ (6) FLAGS (\\Deleted \\Recent))"
        actor.cmd("EXPUNGE")
        assert watcher.readline() == "* VANISHED 3"
        assert watcher.readline() == "* 2 RECENT"
        assert watcher.readline() == "* OK [HIGHESTMODSEQ 7] Highest"
        watcher.send(b"DONE\r\n")
        assert watcher.until("i1")[-1].startswith("i1 OK Idle completed")
    finally:
        watcher.close()
        actor.close()
