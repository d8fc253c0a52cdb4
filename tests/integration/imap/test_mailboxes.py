"""SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST (LIST-EXTENDED,
LIST-STATUS, SPECIAL-USE, CHILDREN), LSUB, STATUS, NAMESPACE."""

from __future__ import annotations

import re

from tests.integration.imap.harness import ImapServer, Wire


def strip_timing(line: str) -> str:
    return re.sub(r" \(\d+\.\d{3} \+ \d+\.\d{3}(?: \+ \d+\.\d{3})? secs\)\.$", "", line)


def answers(w: Wire, command: str) -> list[str]:
    return [strip_timing(x) for x in w.cmd(command)]


def test_namespace(wire: Wire):
    wire.login()
    assert answers(wire, "NAMESPACE") == ['* NAMESPACE (("" "/")) NIL NIL',
                                         "t2 OK Namespace completed"]


def test_select_empty_inbox_rfc3501_shape(wire: Wire):
    wire.login()
    lines = answers(wire, "SELECT INBOX")
    assert lines[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
    assert lines[1] == ("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
                        "Flags permitted.")
    assert lines[2:4] == ["* 0 EXISTS", "* 0 RECENT"]
    assert re.fullmatch(r"\* OK \[UIDVALIDITY \d+\] UIDs valid", lines[4])
    assert lines[5] == "* OK [UIDNEXT 1] Predicted next UID"
    assert lines[6] == "t2 OK [READ-WRITE] Select completed"


def test_examine_is_read_only(wire: Wire):
    wire.login()
    lines = answers(wire, "EXAMINE INBOX")
    assert "* OK [PERMANENTFLAGS ()] Read-only mailbox." in lines
    assert lines[-1] == "t2 OK [READ-ONLY] Examine completed"


def test_select_missing_mailbox(wire: Wire):
    wire.login()
    assert answers(wire, "SELECT Nope") == ["t2 NO Mailbox doesn't exist: Nope"]
    assert answers(wire, "STATUS Nope (MESSAGES)") == ["t3 NO Mailbox doesn't exist: Nope"]
    assert answers(wire, "DELETE Nope") == ["t4 NO [NONEXISTENT] Mailbox doesn't exist: Nope"]


def test_special_use_list_as_thunderbird_sends_it(wire: Wire):
    wire.login()
    lines = answers(wire, 'list (subscribed) "" "*" return (special-use)')
    assert '* LIST (\\Subscribed \\Sent) "/" Sent' in lines
    assert '* LIST (\\Subscribed \\Drafts) "/" Drafts' in lines
    assert '* LIST (\\Subscribed \\Trash) "/" Trash' in lines
    assert lines[-1] == "t2 OK List completed"
    assert answers(wire, 'list "" "INBOX"') == ['* LIST (\\HasNoChildren) "/" INBOX',
                                               "t3 OK List completed"]


def test_create_hierarchy_children_rename_delete(wire: Wire):
    wire.login()
    assert answers(wire, "CREATE Projects/2024") == ["t2 OK Create completed"]
    lines = answers(wire, 'LIST "" "Projects*"')
    # As Dovecot answers (observed): the parent has no directory of its own.
    assert lines == ['* LIST (\\Noselect \\HasChildren) "/" Projects',
                     '* LIST (\\HasNoChildren) "/" Projects/2024', "t3 OK List completed"]
    assert answers(wire, 'LIST "" "Projects/%"') == ['* LIST (\\HasNoChildren) "/" Projects/2024',
                                                    "t4 OK List completed"]
    assert answers(wire, "RENAME Projects Work") == ["t5 OK Rename completed"]
    assert '* LIST (\\HasNoChildren) "/" Work/2024' in answers(wire, 'LIST "" "*"')
    assert answers(wire, "DELETE Work/2024") == ["t7 OK Delete completed"]
    assert answers(wire, "CREATE Work/2024") == ["t8 OK Create completed"]
    assert answers(wire, "CREATE Work/2024")[-1].startswith("t9 NO [ALREADYEXISTS]")
    assert answers(wire, "DELETE INBOX") == ["t10 NO INBOX can't be deleted"]
    assert answers(wire, "DELETE Missing")[-1].startswith("t11 NO [NONEXISTENT]")


def test_mutf7_names_round_trip(server: ImapServer, wire: Wire):
    wire.login()
    assert answers(wire, 'CREATE "Entw&APw-rfe"') == ["t2 OK Create completed"]
    assert '* LIST (\\HasNoChildren) "/" Entw&APw-rfe' in answers(wire, 'LIST "" "*"')
    assert answers(wire, "CREATE Bad&name")[-1].startswith("t4 NO ")
    assert (server.maildir("alice") / "Entw&APw-rfe").is_dir()


def test_list_empty_pattern_and_lsub(wire: Wire):
    wire.login()
    assert answers(wire, 'LIST "" ""') == ['* LIST (\\Noselect) "/" ""', "t2 OK List completed"]
    assert answers(wire, "SUBSCRIBE INBOX") == ["t3 OK Subscribe completed"]
    lines = answers(wire, 'LSUB "" "*"')
    assert '* LSUB () "/" INBOX' in lines and '* LSUB (\\Sent) "/" Sent' in lines
    assert answers(wire, "UNSUBSCRIBE INBOX") == ["t5 OK Unsubscribe completed"]
    assert '* LSUB () "/" INBOX' not in answers(wire, 'LSUB "" "*"')


def test_status_in_dovecot_order_and_list_status(wire: Wire):
    wire.login()
    wire.send(b"a APPEND Sent {20}\r\n")
    assert wire.readline() == "+ OK"
    wire.send(b"Subject: x\r\n\r\nbody\r\n\r\n")
    assert "Append completed" in wire.until("a")[-1]
    lines = answers(wire, "STATUS Sent (UIDNEXT MESSAGES UNSEEN RECENT)")
    assert lines == ["* STATUS Sent (MESSAGES 1 RECENT 1 UIDNEXT 2 UNSEEN 1)",
                     "t2 OK Status completed"]
    lines = answers(wire, 'LIST "" "Sent" RETURN (STATUS (MESSAGES SIZE))')
    assert lines[0] == '* LIST () "/" Sent'  # as Dovecot: no CHILDREN/SPECIAL-USE asked
    assert lines[1] == "* STATUS Sent (MESSAGES 1 SIZE 20)"


def test_list_extended_recursivematch_childinfo(wire: Wire):
    # RFC 5258 5 example shape, answers as the real Dovecot gave them.
    wire.login()
    wire.cmd("CREATE a/b/c")
    wire.cmd("SUBSCRIBE a/b")
    lines = answers(wire, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
    assert '* LIST () "/" a (CHILDINFO ("SUBSCRIBED"))' in lines
    lines = answers(wire, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" *')
    assert '* LIST (\\Subscribed) "/" a/b' in lines
    assert not any(x.endswith('"/" a (CHILDINFO ("SUBSCRIBED"))') for x in lines)
    lines = answers(wire, 'LIST (SUBSCRIBED) "" * RETURN (CHILDREN)')
    assert '* LIST (\\Subscribed \\HasChildren) "/" a/b' in lines


def test_flags_and_permanentflags_follow_new_keyword(wire: Wire):
    wire.login()
    wire.cmd("SELECT INBOX")
    wire.send(b"a APPEND INBOX ($Label) {5+}\r\nhello\r\n")
    lines = [strip_timing(x) for x in wire.until("a")]
    assert lines[:2] == ["* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label)",
                         ("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
                          "$Label \\*)] Flags permitted.")]
    assert lines[2:4] == ["* 1 EXISTS", "* 1 RECENT"]


def test_examine_shows_recent_without_claiming(server: ImapServer, wire: Wire):
    wire.login()
    wire.send(b"a APPEND INBOX {5+}\r\nhello\r\n")
    wire.until("a")
    assert "* 1 RECENT" in answers(wire, "EXAMINE INBOX")
    assert answers(wire, "FETCH 1 (FLAGS)")[0] == "* 1 FETCH (FLAGS (\\Recent))"
    assert "* 1 RECENT" in answers(wire, "SELECT INBOX")  # still unclaimed


def test_tb_extra_mailbox_sep_workaround(make_server):
    srv = make_server("imap_client_workarounds = tb-extra-mailbox-sep")
    w = Wire(srv.port)
    try:
        w.login()
        assert answers(w, "SELECT Sent/")[-1] == "t2 OK [READ-WRITE] Select completed"
        assert answers(w, "STATUS Trash/ (MESSAGES)")[0] == "* STATUS Trash (MESSAGES 0)"
    finally:
        w.close()
