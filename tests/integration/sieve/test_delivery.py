"""Sieve at LMTP delivery: the user's active script decides where the
message goes; actions and log lines as Pigeonhole 0.5.19 under Dovecot
2.3.19 (observed with the real dovecot-lmtpd + a recording sendmail)."""

from __future__ import annotations

import pytest

from tests.integration.sieve.harness import SieveStack, message, sieve_log


def test_no_script_delivers_to_inbox_as_without_sieve(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    assert stack.lmtp_send(message(1)) == {}
    assert len(stack.folder("alice", "INBOX")) == 1
    assert "Info: msgid=<m1@example.org>: saved mail to INBOX" in sieve_log(caplog)


def test_fileinto_create(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", 'require ["fileinto", "mailbox"];\nfileinto :create "Work";\n')
    stack.lmtp_send(message(2))
    assert stack.folder("alice", "INBOX") == []
    assert [b"body 2" in m for m in stack.folder("alice", "Work")] == [True]
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m2@example.org>: fileinto action: stored mail into mailbox 'Work'"]


def test_fileinto_missing_folder_keeps_and_reports_in_user_log(
        stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", 'require "fileinto";\nfileinto "Nope";\n', name="t")
    stack.lmtp_send(message(10))
    assert len(stack.folder("alice", "INBOX")) == 1
    home = stack.home("alice")
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m10@example.org>: stored mail into mailbox 'INBOX'",
        (f"Info: sieve: Execution of script {home}/.dovecot.sieve failed, but implicit keep was "
        f"successful (user logfile {home}/.dovecot.sieve.log may reveal additional details)")]
    user_log = (home / ".dovecot.sieve.log").read_text().splitlines()
    assert user_log[0].startswith("sieve: info: started log at ")
    assert user_log[1] == ("error: msgid=<m10@example.org>: fileinto action: failed to store into "
                           "mailbox 'Nope': Mailbox doesn't exist: Nope.")


def test_broken_script_keeps_the_message(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", 'if header :is "x" { keep\n', name="t")
    stack.lmtp_send(message(8))
    assert len(stack.folder("alice", "INBOX")) == 1
    home = stack.home("alice")
    assert sieve_log(caplog) == [
        (f"Info: sieve: Failed to compile script `{home}/.dovecot.sieve' (view user logfile "
        f"`{home}/.dovecot.sieve.log' for more information)"),
        "Info: sieve: msgid=<m8@example.org>: stored mail into mailbox 'INBOX'"]
    assert (home / ".dovecot.sieve.log").read_text().splitlines()[1:] == [
        ("t: line 2: error: expected end of command ';' or the beginning of a compound block '{', "
        "but found end of file."),
        "t: error: parse failed."]


def test_fileinto_copy_flags_and_keep_flags(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.maildir("alice").joinpath(".Work", "cur").mkdir(parents=True)
    stack.maildir("alice").joinpath(".Work", "new").mkdir()
    stack.maildir("alice").joinpath(".Work", "tmp").mkdir()
    stack.set_script("alice", 'require ["fileinto", "imap4flags", "copy"];\n'
                              'fileinto :copy :flags "\\\\Seen" "Work";\naddflag "\\\\Flagged";\n')
    stack.lmtp_send(message(11))
    work = list((stack.maildir("alice") / ".Work").glob("*/*"))
    inbox = [p for p in stack.maildir("alice").glob("[nc]*/*")]
    assert len(work) == 1 and work[0].name.endswith(":2,S")
    assert len(inbox) == 1 and inbox[0].name.endswith(":2,F")
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m11@example.org>: fileinto action: stored mail into mailbox 'Work'",
        "Info: sieve: msgid=<m11@example.org>: stored mail into mailbox 'INBOX'"]


def test_discard(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", "discard;\n")
    assert stack.lmtp_send(message(2)) == {}
    assert stack.folder("alice", "INBOX") == []
    assert sieve_log(caplog) == [
        ("Info: sieve: msgid=<m2@example.org>: discard action: Marked message to be discarded if not "
        "explicitly delivered (discard action)")]


def test_redirect_goes_through_sendmail(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", 'redirect "carol@example.net";\n')
    stack.lmtp_send(message(3))
    assert stack.folder("alice", "INBOX") == []
    [(args, sent)] = stack.sent()
    assert args == "-i -f sender@example.org -- carol@example.net"
    assert sent.startswith(b"X-Sieve: Pigeonhole Sieve 0.5.19\nX-Sieve-Redirected-From: alice@example.com\n"
                           b"Delivered-To: alice@example.com\nReceived: from ")
    assert b"Return-Path:" not in sent and sent.endswith(b"\nbody 3\n")
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m3@example.org>: redirect action: forwarded to <carol@example.net>"]


def test_redirect_limit_is_a_runtime_error(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", "".join(f'redirect "x{i}@example.net";\n' for i in range(5)), name="t")
    stack.lmtp_send(message(15))
    assert stack.sent() == [] and len(stack.folder("alice", "INBOX")) == 1
    assert (stack.home("alice") / ".dovecot.sieve.log").read_text().splitlines()[1] == (
        "t: line 5: error: number of redirect actions exceeds policy limit (5 > 4).")


def test_reject_sends_an_mdn_and_stores_nothing(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", 'require "reject";\nreject "go away";\n')
    stack.lmtp_send(message(6, subject="test 6"))
    assert stack.folder("alice", "INBOX") == []
    [(args, sent)] = stack.sent()
    assert args == "-i -f <> -- sender@example.org"
    assert b"\nFrom: Postmaster <postmaster@example.com>\nTo: <sender@example.org>\n" in sent
    assert b"\nSubject: Rejected: test 6\n" in sent
    assert b"Your message to <alice@example.com> was automatically rejected:\ngo away\n" in sent
    assert b"Original-Message-ID: <m6@example.org>\n" in sent
    assert b"Disposition: automatic-action/MDN-sent-automatically; deleted\n" in sent
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m6@example.org>: reject action: rejected message from <sender@example.org> (reject)"]


def test_reject_to_null_sender_sends_nothing(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", 'require "reject";\nreject "go away";\n')
    stack.lmtp_send(message(7), mail_from="")
    assert stack.sent() == [] and stack.folder("alice", "INBOX") == []
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m7@example.org>: reject action: not sending reject message to <>"]


VACATION = 'require "vacation";\nvacation :days 1 "I am away";\n'


def test_vacation_answers_once_per_sender(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", VACATION)
    stack.lmtp_send(message(4, subject="test 4"))
    stack.lmtp_send(message(5, subject="test 5"))
    stack.lmtp_send(message(6, sender="other@example.org"), mail_from="other@example.org")
    assert len(stack.folder("alice", "INBOX")) == 3
    sent = stack.sent()
    assert [args for args, _ in sent] == ["-i -f <> -- sender@example.org", "-i -f <> -- other@example.org"]
    reply = sent[0][1]
    for line in (b"From: <alice@example.com>", b"To: Sender <sender@example.org>", b"Subject: Auto: test 4",
                 b"In-Reply-To: <m4@example.org>", b"Auto-Submitted: auto-replied (vacation)",
                 b"Precedence: bulk"):
        assert b"\n" + line + b"\n" in reply
    assert reply.endswith(b"\n\nI am away\n")
    assert sieve_log(caplog)[:4] == [
        "Info: sieve: msgid=<m4@example.org>: vacation action: sent vacation response to <sender@example.org>",
        "Info: sieve: msgid=<m4@example.org>: stored mail into mailbox 'INBOX'",
        ("Info: sieve: msgid=<m5@example.org>: vacation action: discarded duplicate vacation response "
        "to <sender@example.org>"),
        "Info: sieve: msgid=<m5@example.org>: stored mail into mailbox 'INBOX'"]


@pytest.mark.parametrize(("extra", "sender", "to", "line"), [
    ("List-Id: <x.example.org>\r\n", "sender@example.org", "alice@example.com",
     "discarding vacation response to mailinglist recipient <sender@example.org>"),
    ("Auto-Submitted: auto-generated\r\n", "sender@example.org", "alice@example.com",
     "discarding vacation response to auto-submitted message from <sender@example.org>"),
    ("Precedence: bulk\r\n", "sender@example.org", "alice@example.com",
     "discarding vacation response to precedence=bulk message from <sender@example.org>"),
    ("", "MAILER-DAEMON@example.org", "alice@example.com",
     "not sending vacation response to system address <MAILER-DAEMON@example.org>"),
    ("", "owner-x@example.org", "alice@example.com",
     "not sending vacation response to system address <owner-x@example.org>"),
    ("", "x@example.org", "zed@example.com",
     ("discarding vacation response for implicitly delivered message; no known (envelope) recipient "
     "address found in message headers (recipient=<alice@example.com>, and no additional `:addresses' "
     "are specified)")),
    ("", "", "alice@example.com", "discarded vacation reply to <>"),
])
def test_vacation_never_answers(stack: SieveStack, caplog: pytest.LogCaptureFixture,
                                extra: str, sender: str, to: str, line: str) -> None:
    stack.set_script("alice", VACATION)
    stack.lmtp_send(message(20, extra=extra, sender=sender or "x@example.org", to=to), mail_from=sender)
    assert stack.sent() == []
    assert sieve_log(caplog) == [f"Info: sieve: msgid=<m20@example.org>: vacation action: {line}",
                                 "Info: sieve: msgid=<m20@example.org>: stored mail into mailbox 'INBOX'"]


def test_fileinto_inbox_then_keep_stores_once(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", 'require "fileinto";\nfileinto "INBOX";\nkeep;\n')
    stack.lmtp_send(message(17))
    assert len(stack.folder("alice", "INBOX")) == 1
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m17@example.org>: fileinto action: stored mail into mailbox 'INBOX'"]


def test_other_user_without_script_is_untouched(stack: SieveStack) -> None:
    stack.set_script("alice", "discard;\n")
    stack.lmtp_send(message(1, to="bob@example.com"), rcpt="bob@example.com")
    assert len(stack.folder("bob", "INBOX")) == 1


@pytest.fixture
def global_stack(tmp_path, caplog):  # type: ignore[no-untyped-def]
    import logging

    caplog.set_level(logging.INFO, logger="maa")
    scripts = tmp_path / "global"
    scripts.mkdir()
    plugin = (f"  sieve_before = {scripts}/before.sieve\n  sieve_after = {scripts}/after.sieve\n"
              f"  sieve_default = {scripts}/default.sieve\n")
    running = SieveStack(tmp_path, plugin=plugin).start()
    running.global_dir = scripts  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        running.stop()


FILE = 'require ["fileinto", "mailbox", "copy"];\nfileinto {}:create "{}";\n'


def write_global(stack: SieveStack, **scripts: str) -> None:
    for name, text in scripts.items():
        (stack.global_dir / f"{name}.sieve").write_text(text)  # type: ignore[attr-defined]


def test_before_script_that_files_ends_the_run(global_stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    # Observed with Pigeonhole: personal and after scripts do not run.
    write_global(global_stack, before=FILE.format("", "Before"), after=FILE.format("", "After"))
    global_stack.set_script("alice", FILE.format("", "Personal"))
    global_stack.lmtp_send(message(40))
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m40@example.org>: fileinto action: stored mail into mailbox 'Before'"]


def test_before_copy_and_stop_then_personal(global_stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    write_global(global_stack, before=FILE.format(":copy ", "Before") + "stop;\n",
                 after=FILE.format("", "After"))
    global_stack.set_script("alice", FILE.format("", "Personal"))
    global_stack.lmtp_send(message(42))
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m42@example.org>: fileinto action: stored mail into mailbox 'Before'",
        "Info: sieve: msgid=<m42@example.org>: fileinto action: stored mail into mailbox 'Personal'"]


def test_explicit_keeps_let_the_after_script_decide(global_stack: SieveStack,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    write_global(global_stack, before="keep;\n", after=FILE.format("", "After"))
    global_stack.set_script("alice", "keep;\n")
    global_stack.lmtp_send(message(45))
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m45@example.org>: fileinto action: stored mail into mailbox 'After'"]
    assert global_stack.folder("alice", "INBOX") == []


def test_default_script_runs_when_the_user_has_none(global_stack: SieveStack,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    write_global(global_stack, before="keep;\n", default=FILE.format("", "Default"))
    global_stack.lmtp_send(message(44))
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m44@example.org>: fileinto action: stored mail into mailbox 'Default'"]


def test_broken_global_script_keeps_and_logs_errors(global_stack: SieveStack,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    write_global(global_stack, before="if true {\n", after=FILE.format("", "After"))
    global_stack.lmtp_send(message(30))
    path = global_stack.global_dir / "before.sieve"  # type: ignore[attr-defined]
    assert sieve_log(caplog) == [
        "Error: sieve: before: line 2: expected end of compound block '}', but found end of file",
        "Error: sieve: before: parse failed",
        f"Error: sieve: Failed to compile script `{path}'",
        "Info: sieve: msgid=<m30@example.org>: stored mail into mailbox 'INBOX'"]


@pytest.fixture
def failing_stack(tmp_path, caplog):  # type: ignore[no-untyped-def]
    import logging

    caplog.set_level(logging.INFO, logger="maa")
    failing = tmp_path / "fail.sh"
    failing.write_text('#!/bin/sh\ncat >/dev/null\necho "no way" >&2\nexit 75\n')
    failing.chmod(0o755)
    running = SieveStack(tmp_path, extra_config=f"sendmail_path = {failing}\n").start()
    try:
        yield running
    finally:
        running.stop()


def _without_pid(lines: list[str]) -> list[str]:
    import re

    return [re.sub(r"\(\d+\): Terminated", "(PID): Terminated", line) for line in lines]


def test_failed_redirect_is_a_temporary_failure(failing_stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    import smtplib

    failing_stack.set_script("alice", 'redirect "carol@example.net";\n', name="t")
    with pytest.raises(smtplib.SMTPDataError) as info:
        failing_stack.lmtp_send(message(50))
    assert info.value.smtp_code == 451
    assert info.value.smtp_error == (b"4.2.0 <alice@example.com> Execution of Sieve filters was aborted "
                                     b"due to temporary failure")
    assert failing_stack.folder("alice", "INBOX") == []
    home = failing_stack.home("alice")
    assert [r.getMessage() for r in caplog.records if getattr(r, "dovecot_prefix", "") == "lmtp"] == ["no way"]
    assert _without_pid(sieve_log(caplog)) == [
        f"Info: program exec:{failing_stack.root}/fail.sh (PID): Terminated with non-zero exit code 75",
        ("Error: sieve: msgid=<m50@example.org>: redirect action: failed to redirect message to "
        "<carol@example.net>: Sendmail program returned error (temporary failure)"),
        (f"Error: sieve: Execution of script {home}/.dovecot.sieve was aborted due to temporary failure "
        f"(user logfile {home}/.dovecot.sieve.log may reveal additional details)")]


def test_failed_vacation_still_stores(failing_stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    failing_stack.set_script("alice", VACATION)
    failing_stack.lmtp_send(message(51))
    assert len(failing_stack.folder("alice", "INBOX")) == 1
    assert _without_pid(sieve_log(caplog))[1:] == [
        ("Error: sieve: msgid=<m51@example.org>: vacation action: failed to send vacation response to "
        "sender@example.org: <Sendmail program returned error> (temporary error)"),
        "Info: sieve: msgid=<m51@example.org>: stored mail into mailbox 'INBOX'"]


def test_failed_rejection_keeps(failing_stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    failing_stack.set_script("alice", 'require "reject";\nreject "no";\n')
    failing_stack.lmtp_send(message(52))
    assert len(failing_stack.folder("alice", "INBOX")) == 1
    home = failing_stack.home("alice")
    assert _without_pid(sieve_log(caplog))[1:] == [
        "Error: msgid=<m52@example.org>: Temporarily failed to send rejection: Sendmail program returned error",
        "Info: sieve: msgid=<m52@example.org>: stored mail into mailbox 'INBOX'",
        (f"Info: sieve: Execution of script {home}/.dovecot.sieve failed, but implicit keep was successful "
        f"(user logfile {home}/.dovecot.sieve.log may reveal additional details)")]


def test_redirect_through_submission_host(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from aiosmtpd.controller import Controller

    caplog.set_level(logging.INFO, logger="maa")
    received: list[tuple[str, list[str], bytes]] = []

    class Recorder:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Recorder(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        stack = SieveStack(tmp_path, extra_config=f"submission_host = 127.0.0.1:{port}\n").start()
        try:
            stack.set_script("alice", 'redirect "carol@example.net";\n')
            stack.lmtp_send(message(60))
        finally:
            stack.stop()
    finally:
        controller.stop()
    [(sender, rcpts, data)] = received
    assert (sender, rcpts) == ("sender@example.org", ["carol@example.net"])
    assert data.startswith(b"X-Sieve: Pigeonhole Sieve 0.5.19\r\n") and data.endswith(b"body 60\r\n")
    assert stack.outbox.exists() and stack.sent() == []


def test_notify_mailto(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.set_script("alice", 'require "enotify";\n'
                              'notify :from "alice@example.com" :message "hello" '
                              '"mailto:bob@example.net?body=Line%20one&cc=eve@example.net";\n'
                              'notify :importance "3" "mailto:carol@example.net";\n')
    stack.lmtp_send(message(63, subject="test 63"))
    assert len(stack.folder("alice", "INBOX")) == 1
    (args1, first), (args2, second) = stack.sent()
    assert args1 == "-i -f alice@example.com -- bob@example.net eve@example.net"
    assert args2 == "-i -f postmaster@example.com -- carol@example.net"
    for line in (b"Subject: hello", b"From: alice@example.com", b"To: bob@example.net", b"Cc: eve@example.net",
                 b'Auto-Submitted: auto-notified; owner-email="alice@example.com"', b"X-Priority: 3 (Normal)",
                 b"Importance: Normal"):
        assert b"\n" + line + b"\n" in first
    assert first.endswith(b"\n\nLine one\n")
    for line in (b"Subject: Notification: test 63", b"From: Postmaster <postmaster@example.com>",
                 b"X-Priority: 5 (Lowest)", b"Importance: Low"):
        assert b"\n" + line + b"\n" in second
    assert second.endswith(b"\n\nNotification of new message.\n")
    assert sieve_log(caplog) == [
        ("Info: sieve: msgid=<m63@example.org>: notify action: sent mail notification to <bob@example.net>, "
        "<eve@example.net>"),
        "Info: sieve: msgid=<m63@example.org>: notify action: sent mail notification to <carol@example.net>",
        "Info: sieve: msgid=<m63@example.org>: stored mail into mailbox 'INBOX'"]


def test_legacy_location_names_the_script_itself(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    caplog.set_level(logging.INFO, logger="maa")
    # The pre-2.2 form: a plain file (no symlink, no script directory).
    stack = SieveStack(tmp_path, plugin="  sieve = ~/.dovecot.sieve\n  sieve_user_log = ~/sieve.log\n")
    stack.config_text = stack.config_text.replace("  sieve = file:~/sieve;active=~/.dovecot.sieve\n", "")
    stack.config_path.write_text(stack.config_text)
    stack.start()
    try:
        (stack.home("alice") / ".dovecot.sieve").write_text(
            'require ["fileinto", "mailbox"];\nfileinto :create "Legacy";\n')
        stack.lmtp_send(message(70))
        assert len(stack.folder("alice", "Legacy")) == 1
        (stack.home("alice") / ".dovecot.sieve").write_text("if true {\n")
        stack.lmtp_send(message(71))
        assert len(stack.folder("alice", "INBOX")) == 1
        assert (stack.home("alice") / "sieve.log").read_text().splitlines()[-1] == ".dovecot: error: parse failed."
    finally:
        stack.stop()


def test_spamtest_files_spam(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    plugin = ("  sieve_extensions = +spamtest +spamtestplus\n"
              "  sieve_spamtest_status_type = score\n"
              "  sieve_spamtest_status_header = X-Spam-Score: score=(-?[[:digit:]]+\\.[[:digit:]]).*\n"
              "  sieve_spamtest_max_value = 5.0\n")
    stack = SieveStack(tmp_path, plugin=plugin).start()
    try:
        stack.set_script("alice", 'require ["spamtest", "fileinto", "mailbox", "relational", '
                                  '"comparator-i;ascii-numeric"];\n'
                                  'if spamtest :value "ge" :comparator "i;ascii-numeric" "6" '
                                  '{ fileinto :create "Junk"; }\n')
        stack.lmtp_send(message(80, extra="X-Spam-Score: score=4.2 required=5.0\r\n"))
        stack.lmtp_send(message(81, extra="X-Spam-Score: score=0.4 required=5.0\r\n"))
        stack.lmtp_send(message(82))
        assert len(stack.folder("alice", "Junk")) == 1 and len(stack.folder("alice", "INBOX")) == 2
    finally:
        stack.stop()


def test_vacation_options_from_the_plugin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plugin = "  sieve_vacation_dont_check_recipient = yes\n  sieve_vacation_send_from_recipient = yes\n"
    stack = SieveStack(tmp_path, plugin=plugin).start()
    try:
        stack.set_script("alice", VACATION)
        stack.lmtp_send(message(90, to="list@example.org"))  # not addressed to alice: answered anyway
        [(args, _)] = stack.sent()
        assert args == "-i -f alice@example.com -- sender@example.org"
    finally:
        stack.stop()


@pytest.mark.parametrize(("setting", "sender"), [
    ("recipient", "alice@example.com"), ("postmaster", "postmaster@example.com"),
    ('"<bounces@example.com>"', "bounces@example.com")])  # quoted: a bare < reads a file
def test_redirect_envelope_from(tmp_path, setting: str, sender: str) -> None:  # type: ignore[no-untyped-def]
    stack = SieveStack(tmp_path, plugin=f"  sieve_redirect_envelope_from = {setting}\n").start()
    try:
        stack.set_script("alice", 'redirect "carol@example.net";\n')
        stack.lmtp_send(message(95))
        [(args, _)] = stack.sent()
        assert args == f"-i -f {sender} -- carol@example.net"
    finally:
        stack.stop()


def test_redirect_of_the_same_message_twice(stack: SieveStack, caplog: pytest.LogCaptureFixture) -> None:
    # Observed with Pigeonhole: the second copy is not forwarded, and is kept.
    stack.set_script("alice", 'redirect "dave@example.net";\n')
    stack.lmtp_send(message(77))
    stack.lmtp_send(message(77))
    assert len(stack.sent()) == 1 and len(stack.folder("alice", "INBOX")) == 1
    assert sieve_log(caplog) == [
        "Info: sieve: msgid=<m77@example.org>: redirect action: forwarded to <dave@example.net>",
        ("Info: sieve: msgid=<m77@example.org>: redirect action: discarded duplicate forward to "
        "<dave@example.net>"),
        "Info: sieve: msgid=<m77@example.org>: stored mail into mailbox 'INBOX'"]


def test_include_personal_and_global(tmp_path) -> None:  # type: ignore[no-untyped-def]
    global_dir = tmp_path / "global-scripts"
    global_dir.mkdir()
    (global_dir / "spam.sieve").write_text('require ["fileinto", "mailbox"];\n'
                                            'if header :contains "subject" "spam" { fileinto :create "Spam"; }\n')
    stack = SieveStack(tmp_path, plugin=f"  sieve_global = file:{global_dir}\n").start()
    try:
        (stack.home("alice") / "sieve").mkdir()
        (stack.home("alice") / "sieve" / "lists.sieve").write_text(
            'require ["fileinto", "mailbox"];\nif exists "list-id" { fileinto :create "Lists"; }\n')
        stack.set_script("alice", 'require "include";\ninclude :global "spam";\ninclude :personal "lists";\n')
        stack.lmtp_send(message(1, subject="buy spam"))
        stack.lmtp_send(message(2, extra="List-Id: <x.example.org>\r\n"))
        stack.lmtp_send(message(3))
        assert [len(stack.folder("alice", f)) for f in ("Spam", "Lists", "INBOX")] == [1, 1, 1]
    finally:
        stack.stop()
