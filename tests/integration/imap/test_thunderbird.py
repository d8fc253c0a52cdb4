"""Replay of what Thunderbird 153 sends (shared/fixtures/thunderbird-imap-
transcript.txt, Part A): each command gets the same kind of answer Dovecot
gave there, and never a BAD."""

from __future__ import annotations

import base64
import re

from tests.integration.imap.harness import PASSWORD, ImapServer, Wire
from tests.integration.imap.test_messages import fill

HEADERS = ("From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups "
           "In-Reply-To Content-Type Reply-To Received")


def test_thunderbird_session(server: ImapServer):
    fill(server, 3)
    fill(server, 2, box="Sent")
    w = Wire(server.port)
    try:
        assert w.greeting.startswith("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE "
                                     "IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN] ")
        w.starttls()
        caps = w.cmd("capability", tag="16")
        assert caps[-1] == "16 OK Pre-login capabilities listed, post-login capabilities have more."
        w.send(b"17 authenticate PLAIN\r\n")
        assert w.readline() == "+ "
        w.send(base64.b64encode(f"\0alice\0{PASSWORD}".encode()) + b"\r\n")
        assert re.fullmatch(r"17 OK \[CAPABILITY IMAP4rev1 .*\] Logged in", w.until("17")[-1])
        assert w.cmd("namespace", tag="18")[0] == '* NAMESPACE (("" "/")) NIL NIL'
        assert w.cmd('ID ("name" "Thunderbird" "version" "153.7.0")', tag="19")[0] == \
            '* ID ("name" "Dovecot")'
        lines = w.cmd('list (subscribed) "" "*" return (special-use)', tag="20")
        assert '* LIST (\\Subscribed \\Sent) "/" Sent' in lines
        assert w.cmd('list "" "INBOX"', tag="21")[0] == '* LIST (\\HasNoChildren) "/" INBOX'
        lines = w.cmd('select "INBOX"', tag="15")
        assert "* 3 EXISTS" in lines and "* OK [UNSEEN 1] First unseen." in lines
        lines = w.cmd("UID fetch 1:* (FLAGS)", tag="16")
        assert lines[0] == "* 1 FETCH (UID 1 FLAGS (\\Recent))"
        lines = w.cmd(f"UID fetch 1:3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({HEADERS})])",
                      tag="17")
        assert lines[0].startswith("* 1 FETCH (UID 1 RFC822.SIZE ")
        assert "BODY[HEADER.FIELDS (FROM TO CC BCC SUBJECT DATE MESSAGE-ID" in lines[0]
        lines = w.cmd("UID fetch 3 (UID RFC822.SIZE BODY[])", tag="18")
        assert lines[0].startswith("* 3 FETCH (UID 3 RFC822.SIZE ")
        assert "FLAGS (\\Seen \\Recent)" in lines[0]
        w.send(b"19 IDLE\r\n")
        assert w.readline() == "+ idling"
        w.send(b"DONE\r\n")
        assert w.until("19")[-1].startswith("19 OK Idle completed")
        assert w.cmd("noop", tag="20")[-1].startswith("20 OK NOOP completed")
        lines = w.cmd("UID fetch 4:* (FLAGS)", tag="21")
        assert lines[0] == "* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))"
        lines = w.cmd('STATUS "Sent" (UIDNEXT MESSAGES UNSEEN RECENT)', tag="22")
        assert lines[0] == "* STATUS Sent (MESSAGES 2 RECENT 2 UIDNEXT 3 UNSEEN 2)"
        lines = w.cmd("UID fetch 1,2 (UID RFC822.SIZE BODY.PEEK[])", tag="23")
        assert all(not x.startswith("23 BAD") for x in lines)
    finally:
        w.close()


def test_thunderbird_part_c_plain_imap4rev1(make_server):
    # imap_capability = IMAP4rev1: Thunderbird falls back to LIST + LSUB.
    srv = make_server("imap_capability = IMAP4rev1")
    w = Wire(srv.port)
    try:
        assert w.greeting == ("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN AUTH=LOGIN] "
                              "Dovecot (Debian) ready.")
        w.starttls()
        assert w.cmd("capability", tag="17")[0] == "* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN"
        w.send(b"18 authenticate PLAIN\r\n")
        assert w.readline() == "+ "
        w.send(base64.b64encode(f"\0alice\0{PASSWORD}".encode()) + b"\r\n")
        assert w.until("18") == ["18 OK [CAPABILITY IMAP4rev1] Logged in"]
        assert '* LIST (\\HasNoChildren) "/" INBOX' in w.cmd('list "" "*"', tag="19")
        assert '* LSUB (\\Sent) "/" Sent' in w.cmd('lsub "" "*"', tag="20")
    finally:
        w.close()
