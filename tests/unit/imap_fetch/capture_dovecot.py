"""Capture the real Dovecot's FETCH, SEARCH, SORT and THREAD answers for the fixture messages.

Not a test: run it by hand (as root, with Debian's dovecot-imapd installed)
to regenerate `fixtures/dovecot_*.json`, the oracle that the fetch, search,
sort and thread tests compare against (three mailboxes: fixtures/messages,
messages-extra, messages-thread):

    .venv/bin/python tests/unit/imap_fetch/capture_dovecot.py

Each scenario gets a fresh user (static passdb/userdb: the user name picks a
fresh home), so one scenario's \\Seen changes do not leak into another.
Responses are stored decoded as latin-1 so that every byte survives JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.support.raw_imap import RawImap
from tests.unit.imap_fetch.dovecot_fixtures import (  # noqa: E402  (the tests' own tables)
    EXTRA_MESSAGES,
    KEYWORDS,
    MAILBOX,
    MAILBOX_EXTRA,
    MAILBOX_THREAD,
    THREAD_MESSAGES,
)

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
MESSAGES = FIXTURES / "messages"
LAB = Path("/tmp/maa-e2-dovecot-lab")
PORT = 31743

CONFIG = f"""\
base_dir = {LAB}/run
instance_name = maa-e2-lab
protocols = imap
listen = 127.0.0.1
log_path = {LAB}/mail.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir:LAYOUT=fs
first_valid_uid = 65534
passdb {{
  driver = static
  args = password=pw
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={LAB}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {PORT}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""



def make_maildir(home: Path, extra: bool | str = False) -> None:
    maildir = home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (maildir / "dovecot-keywords").write_text(
        "".join(f"{i} {k}\n" for i, k in enumerate(KEYWORDS)))
    if extra == "thread":
        table, directory = MAILBOX_THREAD, THREAD_MESSAGES
    else:
        table, directory = (MAILBOX_EXTRA, EXTRA_MESSAGES) if extra else (MAILBOX, MESSAGES)
    for n, (name, flags, keywords, mtime) in enumerate(table, 1):
        data = (directory / name).read_bytes()
        letters = flags + "".join(chr(ord("a") + KEYWORDS.index(k)) for k in keywords)
        letters = "".join(sorted(letters))
        crlf_size = len(data.replace(b"\n", b"\r\n"))
        # The name orders the UIDs (Dovecot sorts new files by name); the
        # mtime is the internal date, which need not follow that order.
        base = f"{1700000000 + n}.M{n}P1.lab,S={len(data)},W={crlf_size}"
        path = maildir / "cur" / f"{base}:2,{letters}"
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
    for root, dirs, files in os.walk(home):
        for entry in dirs + files:
            shutil.chown(os.path.join(root, entry), "nobody", "nogroup")
    shutil.chown(home, "nobody", "nogroup")


class RawClient(RawImap):
    """A byte-exact client of the lab Dovecot (PORT, which
    replay_against_maa.py points at maa); tags as in the fixtures."""

    def __init__(self) -> None:
        super().__init__(PORT, tag_format=b"c%03d", timeout=10)


def run_scenario(user: str, commands: list[bytes],
                 extra: bool | str = False) -> list[dict[str, str]]:
    home = LAB / "home" / user
    make_maildir(home, extra)
    client = RawClient()
    client.command(b"LOGIN " + user.encode() + b" pw")
    results = []
    for cmd in commands:
        response = client.command(cmd)
        # The timing suffix "(0.001 + 0.000 secs)" varies run to run.
        results.append({"command": cmd.decode("latin-1"), "response": response.decode("latin-1")})
    client.command(b"LOGOUT")
    return results


FETCH_COMMANDS = [
    b"SELECT INBOX",
    b"FETCH 1:* ALL",
    b"FETCH 1:* FAST",
    b"FETCH 1:* FULL",
    b"FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)",
    b"FETCH 1:* (ENVELOPE)",
    b"FETCH 1:* (BODY)",
    b"FETCH 1:* (BODYSTRUCTURE)",
    b"FETCH 1 (ENVELOPE UID BODY.PEEK[HEADER.FIELDS (Subject)] FLAGS)",
    b"FETCH 1 (BODY.PEEK[] UID FLAGS RFC822.SIZE)",
    b"FETCH 1 (INTERNALDATE BODYSTRUCTURE UID ENVELOPE)",
    b"UID FETCH 1 (FLAGS)",
    b"UID FETCH 1 (FLAGS UID)",
    b"UID FETCH 2:3 (RFC822.SIZE UID)",
    b"FETCH 1 (FLAGS FLAGS UID UID)",
    b"FETCH 2 (BODY.PEEK[1] BODY.PEEK[1.1] BODY.PEEK[1.2.MIME] BODY.PEEK[2] BODY.PEEK[2.MIME])",
    b"FETCH 2 (BODY.PEEK[TEXT] BODY.PEEK[HEADER])",
    b"FETCH 2 BODY.PEEK[HEADER.FIELDS (from subject Message-ID)]",
    b"FETCH 2 BODY.PEEK[HEADER.FIELDS.NOT (from subject)]",
    b"FETCH 2 BODY.PEEK[HEADER.FIELDS (X-Nonexistent)]",
    b"FETCH 2 (BODY.PEEK[]<0.10> BODY.PEEK[TEXT]<5.20>)",
    b"FETCH 2 BODY.PEEK[]<10000.10>",
    b"FETCH 2 BODY.PEEK[1]<0.0>",
    b"FETCH 1 BODY.PEEK[1]",
    b"FETCH 1 BODY.PEEK[1.MIME]",
    b"FETCH 1 BODY.PEEK[2]",
    b"FETCH 1 BODY.PEEK[5.1]",
    b"FETCH 1 BODY.PEEK[TEXT]",
    b"FETCH 4 (BODY.PEEK[2] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] "
    b"BODY.PEEK[2.MIME])",
    b"FETCH 4 BODY.PEEK[2.HEADER.FIELDS (Subject)]",
    b"FETCH 5 (BODY.PEEK[TEXT] BODY.PEEK[1] RFC822.SIZE)",
    b"FETCH 3 (BODY.PEEK[HEADER.FIELDS (\"Subject\" From)])",
    b"FETCH 1 RFC822.HEADER",
    b"FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])",
    b"FETCH 2 (BINARY.PEEK[1.1] BINARY.SIZE[1.1] BINARY.PEEK[2] BINARY.SIZE[2])",
    b"FETCH 2 BINARY.PEEK[2]<4.8>",
    b"FETCH 3 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[])",
    b"FETCH 1 MODSEQ",
    b"FETCH 1 (FOO)",
    b"FETCH 1 ()",
    b"FETCH 1 BODY[HEADER.FIELDS]",
    b"FETCH 1 BODY[HEADER.FIELDS ()]",
    b"FETCH 1 BODY.PEEK[TEXT.FOO]",
    b"FETCH 1 BODY.PEEK[0]",
    b"FETCH 1 BODY.PEEK[1.0]",
    b"FETCH 1 BODY.PEEK[]<5>",
    b"FETCH 1 BODY.PEEK[]<a.5>",
    b"FETCH 1 BODY.PEEK",
    b"FETCH 1 BODY[",
    b"FETCH 1 BINARY.PEEK[HEADER]",
    b"FETCH 1 (UID",
    b"FETCH 1 ALL FLAGS",
    b"FETCH 1 (ALL)",
    b"FETCH 1 (FLAGS) (CHANGEDSINCE 1)",
    b"FETCH 1 BODY.PEEK[]<1.a>",
    b"FETCH 1 BODY.PEEK[]<>",
    b"FETCH 1 BODY.PEEK[]x",
    b"FETCH 1 BODY.PEEK[MIME]",
    b"FETCH 1 BODY.PEEK[1.TEXT.FOO]",
    b"FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject:)]",
    b"FETCH 1 BODY.PEEK[HEADER.FIELDS(Subject)]",
    b"FETCH 1 body.peek[header.fields (subject)]",
    b"FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject]",
    b"FETCH 1 BODY.PEEK[TEXT ]",
    b"FETCH 1 BODY.PEEK[1.2.3.HEADER]",
    b"FETCH 1 BINARY.PEEK[1.MIME]",
    b"FETCH 1 BINARY.SIZE[]",
    b"FETCH 1 BINARY.SIZE[1]<0.5>",
    b"FETCH 4 (BINARY.PEEK[2] BINARY.SIZE[2])",
    b"FETCH 2 BINARY.PEEK[1]",
    b"FETCH 2 BINARY.SIZE[]",
    b"FETCH 1 RFC822.FOO",
    b"FETCH 1 \"FLAGS\"",
    b"FETCH 1 (\"FLAGS\")",
    b"FETCH 1 (FLAGS) (VANISHED)",
    b"FETCH 1 (FLAGS) (CHANGEDSINCE x)",
    b"FETCH 1 (FLAGS) (CHANGEDSINCE)",
    b"FETCH 1 (FLAGS) CHANGEDSINCE",
    b"FETCH 1 RFC822.TEXT",
    b"FETCH 2 BODY[1.1]",
    b"FETCH 2 BODY[1.2]",
    b"FETCH 5 (UID RFC822)",
    b"FETCH 6 BODY[]",
    b"FETCH 3 (FLAGS BODY[TEXT])",
]

CONDSTORE_COMMANDS = [
    b"SELECT INBOX",
    b"FETCH 1 (FLAGS)",
    b"FETCH 1 (MODSEQ)",
    b"FETCH 1 (UID MODSEQ FLAGS)",
    b"FETCH 1:* (FLAGS) (CHANGEDSINCE 1)",
    b"ENABLE CONDSTORE",
    b"FETCH 1 (FLAGS)",
    b"FETCH 1 (UID)",
    b"UID FETCH 1 (RFC822.SIZE)",
    b"STORE 2 +FLAGS (\\Flagged)",
    b"FETCH 1:* (FLAGS) (CHANGEDSINCE 2)",
    b"UID FETCH 1:* (UID) (CHANGEDSINCE 2)",
    b"FETCH 2 BODY[TEXT]",
    b"FETCH 1:* (FLAGS) (CHANGEDSINCE 0)",
    b"FETCH 1 (FLAGS) (FOO)",
    b"SEARCH MODSEQ 3",
    b"SEARCH MODSEQ \"/flags/\\\\flagged\" all 3",
    b"SEARCH MODSEQ \"/flags/\\\\flagged\" shared 1",
    b"SEARCH MODSEQ \"/flags/\\\\flagged\" bogus 1",
    b"SEARCH MODSEQ 999",
    b"SEARCH FLAGGED MODSEQ 1",
    b"UID SEARCH MODSEQ 1",
]

SEARCH_COMMANDS = [
    b"SELECT INBOX",
    b"SEARCH ALL",
    b"SEARCH SEEN",
    b"SEARCH UNSEEN",
    b"SEARCH ANSWERED",
    b"SEARCH UNANSWERED",
    b"SEARCH FLAGGED",
    b"SEARCH UNFLAGGED",
    b"SEARCH DELETED",
    b"SEARCH UNDELETED",
    b"SEARCH DRAFT",
    b"SEARCH UNDRAFT",
    b"SEARCH RECENT",
    b"SEARCH NEW",
    b"SEARCH OLD",
    b"SEARCH KEYWORD $Forwarded",
    b"SEARCH KEYWORD project_x",
    b"SEARCH KEYWORD Project_X",
    b"SEARCH UNKEYWORD $Forwarded",
    b"SEARCH KEYWORD NoSuchKeyword",
    b"SEARCH UNKEYWORD NoSuchKeyword",
    b"SEARCH KEYWORD \\Seen",
    b"SEARCH FROM alice",
    b"SEARCH FROM ALICE@EXAMPLE",
    b"SEARCH FROM \"Alice Example\"",
    b"SEARCH FROM \"J\xc3\xbcrgen\"",
    b"SEARCH CHARSET UTF-8 FROM {6+}\r\nJ\xc3\xbcrgen",
    b"SEARCH CHARSET UTF-8 FROM \"m\xc3\xbcller\"",
    b"SEARCH CHARSET ISO-8859-1 FROM {6+}\r\nM\xfcller",
    b"SEARCH CHARSET X-NOSUCH FROM x",
    b"SEARCH CHARSET US-ASCII FROM x",
    b"SEARCH TO bob",
    b"SEARCH TO andre",
    b"SEARCH TO \"Andr\xc3\xa9\"",
    b"SEARCH CC dave",
    b"SEARCH CC \"Dave, Jr.\"",
    b"SEARCH BCC boss",
    b"SEARCH SUBJECT lunch",
    b"SEARCH SUBJECT \"gr\xc3\xbc\xc3\x9fe\"",
    b"SEARCH SUBJECT \"GR\xc3\x9c\xc3\x9fE\"",
    b"SEARCH SUBJECT \"\"",
    b"SEARCH SUBJECT \"on  friday\"",
    b"SEARCH HEADER Message-ID lunch-1",
    b"SEARCH HEADER X-Mailer \"\"",
    b"SEARCH HEADER X-Nonexistent \"\"",
    b"SEARCH HEADER In-Reply-To example",
    b"SEARCH HEADER Content-Type multipart",
    b"SEARCH BODY numbers",
    b"SEARCH BODY \"caf\xc3\xa9\"",
    b"SEARCH BODY CAF\xc3\x89",
    b"SEARCH BODY \"sch\xc3\xb6ne\"",
    b"SEARCH BODY Thai",
    b"SEARCH BODY lunch",
    b"SEARCH BODY \"<p>\"",
    b"SEARCH BODY AAECAwQF",
    b"SEARCH BODY figures",
    b"SEARCH BODY \"Content-Type\"",
    b"SEARCH TEXT lunch",
    b"SEARCH TEXT alice",
    b"SEARCH TEXT ping",
    b"SEARCH TEXT \"caf\xc3\xa9 budget\"",
    b"SEARCH TEXT \"caf\xc3\xa9  budget\"",
    b"SEARCH TEXT \"report.bin\"",
    b"SEARCH LARGER 400",
    b"SEARCH SMALLER 400",
    b"SEARCH LARGER 99999",
    b"SEARCH BEFORE 5-Jun-2024",
    b"SEARCH ON 5-Jun-2024",
    b"SEARCH SINCE 5-Jun-2024",
    b"SEARCH ON 4-Jun-2024",
    b"SEARCH SENTBEFORE 5-Jun-2024",
    b"SEARCH SENTON 4-Jun-2024",
    b"SEARCH SENTON 5-Jun-2024",
    b"SEARCH SENTSINCE 7-Jun-2024",
    b"SEARCH SENTON \"3-Jun-2024\"",
    b"SEARCH SINCE 31-Feb-2024",
    b"SEARCH SINCE 5-June-2024",
    b"SEARCH SINCE 2024-06-05",
    b"SEARCH OLDER 1",
    b"SEARCH YOUNGER 1",
    b"SEARCH 2:4",
    b"SEARCH 4:2",
    b"SEARCH 5:*",
    b"SEARCH *",
    b"SEARCH 1,3,5",
    b"SEARCH 9",
    b"SEARCH 9:10",
    b"SEARCH UID 2:4",
    b"SEARCH UID 4:*",
    b"SEARCH UID 100:*",
    b"SEARCH UID 100",
    b"UID SEARCH 2:3",
    b"UID SEARCH UID 2:3",
    b"SEARCH NOT SEEN",
    b"SEARCH NOT NOT SEEN",
    b"SEARCH OR SEEN FLAGGED",
    b"SEARCH OR (SEEN DRAFT) FLAGGED",
    b"SEARCH (SEEN UNDELETED)",
    b"SEARCH ((SEEN) (UNDELETED))",
    b"SEARCH SEEN UNDELETED SMALLER 1000",
    b"SEARCH OR OR SEEN FLAGGED DRAFT",
    b"SEARCH NOT (OR SEEN FLAGGED)",
    b"SEARCH all seen",
    b"SEARCH",
    b"SEARCH FOO",
    b"SEARCH NOT",
    b"SEARCH OR SEEN",
    b"SEARCH (SEEN",
    b"SEARCH SEEN)",
    b"SEARCH ()",
    b"SEARCH LARGER x",
    b"SEARCH LARGER -1",
    b"SEARCH LARGER 99999999999999999999",
    b"SEARCH BEFORE 5-Jun-24",
    b"SEARCH HEADER",
    b"SEARCH HEADER Subject",
    b"SEARCH UID x",
    b"SEARCH 0",
    b"SEARCH 1:0",
    b"SEARCH CHARSET",
    b"SEARCH RETURN (ALL) SEEN",
    b"SEARCH RETURN () SEEN",
    b"SEARCH RETURN (MIN MAX COUNT) SEEN",
    b"SEARCH RETURN (MIN) NoSuch",
    b"SEARCH $",
    b"SEARCH MODSEQ 1",
    b"SEARCH SUBJECT {5+}\r\nLunch",
    b"SEARCH SUBJECT lunch SUBJECT fwd",
    b"SEARCH SUBJECT \"Fwd: Lunch\"",
    b"SEARCH TO alice@example.org FROM carol",
    b"SEARCH FROM \"<carol@example.com>\"",
    b"SEARCH FROM example.com",
    b"SEARCH FROM \"@\"",
    b"SEARCH HEADER From Example",
    b"SEARCH HEADER FROM \"J\xc3\xbcrgen\"",
    b"SEARCH HEADER Subject \"Gr\xc3\xbc\xc3\x9fe\"",
    b"SEARCH HEADER Date \"Jun 2024\"",
    b"SEARCH BODY \"ideas for july\"",
    b"SEARCH BODY \"See below\"",
    b"SEARCH BODY \"shall we\"",
    b"SEARCH TEXT \"shall we\"",
    b"SEARCH TEXT \"Fwd\"",
    b"SEARCH TEXT AAECAwQF",
    b"SEARCH TEXT figures",
    b"SEARCH TEXT inner",
    b"SEARCH TEXT outer-boundary",
    b"SEARCH TEXT \"Caf=C3\"",
    b"SEARCH TEXT \"multi-part message\"",
    b"SEARCH BODY \"multi-part message\"",
    b"SEARCH BODY \"Subject: Lunch\"",
    b"SEARCH BODY \"Bob\"",
    b"SEARCH BODY cafe",
    b"SEARCH FROM jurgen",
    b"SEARCH FROM \"juergen@example.de\"",
    b"SEARCH FROM \"J\xc3\xbcrgen M\xc3\xbcller <juergen@example.de>\"",
    b"SEARCH FROM \"Alice Example <alice@example.org>\"",
    b"SEARCH TO \"Bob <bob@example.net>, carol\"",
    b"SEARCH \"SEEN\"",
    b"SEARCH FROM",
    b"SEARCH SUBJECT",
    b"SEARCH KEYWORD",
    b"SEARCH UID",
    b"SEARCH SINCE",
    b"SEARCH SINCE 0-Jun-2024",
    b"SEARCH SINCE 32-Jun-2024",
    b"SEARCH SINCE 5-jun-2024",
    b"SEARCH SINCE 05-Jun-2024",
    b"SEARCH OLDER 0",
    b"SEARCH OLDER x",
    b"SEARCH MODSEQ x",
    b"SEARCH HEADER Received mx",
    b"SEARCH HEADER \"\" x",
    b"SEARCH UNKEYWORD \\Seen",
    b"SEARCH SENTBEFORE 1-Jan-1970",
    b"SEARCH (SEEN) (FLAGGED)",
    b"SEARCH OR SEEN (FLAGGED DELETED)",
    b"SEARCH NOT 1:3",
    b"SEARCH 1:3 UID 3:6",
    b"SEARCH CHARSET utf-8 ALL",
    b"SEARCH CHARSET UTF-8 CHARSET UTF-8 ALL",
    b"SEARCH CHARSET \"UTF-8\" SUBJECT lunch",
    b"SEARCH CHARSET windows-1252 SUBJECT lunch",
    b"SEARCH CHARSET base64 SUBJECT lunch",
    b"SEARCH LARGER 0",
    b"SEARCH SMALLER 0",
    b"SEARCH 1:*",
    b"SEARCH *:1",
    b"SEARCH 1,",
    b"SEARCH SEEN 9",
]


EXTRA_COMMANDS = [
    b"SELECT INBOX",
    b"FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)",
    b"FETCH 1:* BODY.PEEK[HEADER.FIELDS (Subject X-Long Received From)]",
    b"FETCH 1:* BODY.PEEK[HEADER]",
    b"FETCH 3 (BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.1] BODY.PEEK[2.1.MIME] BODY.PEEK[2.2] "
    b"BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[3] BODY.PEEK[TEXT])",
    b"FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[])",
    b"FETCH 3 (BINARY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[3] BINARY.PEEK[])",
    b"SEARCH SUBJECT \"caf\xc3\xa9 and\"",
    b"SEARCH SUBJECT \"\xc3\xbcber more\"",
    b"SEARCH SUBJECT \"more words folded\"",
    b"SEARCH SUBJECT \"more  words\"",
    b"SEARCH HEADER X-Long \"part second\"",
    b"SEARCH HEADER X-Long \"first part\"",
    b"SEARCH HEADER Received c.example.org",
    b"SEARCH FROM \"Zo\xc3\xab\"",
    b"SEARCH FROM \"\\\"Zo\xc3\xab \xc3\x9cnal\\\"\"",
    b"SEARCH FROM \"Fran\xc3\xa7ois <fr\"",
    b"SEARCH FROM \"zoe@example.org>, Fran\xc3\xa7ois\"",
    b"SEARCH TO undisclosed",
    b"SEARCH TO \"undisclosed-recipients:;\"",
    b"SEARCH TO \"undisclosed-recipients: ;\"",
    b"SEARCH CC \"team: \"",
    b"SEARCH CC \"ann@example.com>, \\\"Bo, B.\\\"\"",
    b"SEARCH CC \">;\"",
    b"SEARCH FROM route",
    b"SEARCH FROM \"@route.example:bare\"",
    b"SEARCH TO \"\\\"Quote\"",
    b"SEARCH TO \"Quote \\\"Inside\\\"\"",
    b"SEARCH BODY \"caf\xc3\xa9 au lait\"",
    b"SEARCH BODY \"\xc3\xbcbergr\xc3\xb6\xc3\x9fe\"",
    b"SEARCH BODY \"third line\"",
    b"SEARCH BODY strasse",
    b"SEARCH BODY \"stra\xc3\x9fe\"",
    b"SEARCH BODY preamble",
    b"SEARCH TEXT preamble",
    b"SEARCH TEXT epilogue",
    b"SEARCH BODY \"inner plain\"",
    b"SEARCH BODY \"inner html\"",
    b"SEARCH BODY \"<b>\"",
    b"SEARCH BODY \"inner@example\"",
    b"SEARCH TEXT \"inner@example\"",
    b"SEARCH TEXT \"inner s\xc3\xbcbject\"",
    b"SEARCH TEXT \"Inner_s\"",
    b"SEARCH BODY \"gr\xc3\xbc\xc3\x9fe\"",
    b"SEARCH BODY naive",
    b"SEARCH BODY \"na\xc3\xafve\"",
    b"SEARCH BODY facade",
    b"SEARCH TEXT \"image/png\"",
    b"SEARCH TEXT iVBOR",
    b"SEARCH TEXT \"message-id:\"",
    b"SEARCH TEXT \"x-long: first\"",
    b"SEARCH TEXT \"subject: caf\xc3\xa9\"",
    b"SEARCH TEXT \"received:\"",
    b"SEARCH TEXT \"Content-Transfer-Encoding: quoted\"",
    b"SEARCH SENTBEFORE 1-Jan-2030",
    b"SEARCH NOT SENTBEFORE 1-Jan-2030",
    b"SEARCH SENTSINCE 1-Jan-1970",
    b"SEARCH NOT SENTSINCE 1-Jan-1970",
    b"SEARCH SENTON 11-Jun-2024",
    b"SEARCH SENTON 10-Jun-2024",
    b"SEARCH HEADER Date \"\"",
    b"SEARCH NOT HEADER Date \"\"",
    b"SEARCH SUBJECT \"\"",
    b"SEARCH HEADER Content-Type \"\"",
    b"SEARCH HEADER MIME-Version 1.0",
    b"SEARCH LARGER 500",
]

SORT_COMMANDS = [
    b"SELECT INBOX",
    b"SORT (ARRIVAL) UTF-8 ALL",
    b"SORT (REVERSE ARRIVAL) UTF-8 ALL",
    b"SORT (DATE) UTF-8 ALL",
    b"SORT (REVERSE DATE) UTF-8 ALL",
    b"SORT (FROM) UTF-8 ALL",
    b"SORT (REVERSE FROM) UTF-8 ALL",
    b"SORT (TO) UTF-8 ALL",
    b"SORT (CC) UTF-8 ALL",
    b"SORT (SIZE) UTF-8 ALL",
    b"SORT (REVERSE SIZE) UTF-8 ALL",
    b"SORT (SUBJECT) UTF-8 ALL",
    b"SORT (REVERSE SUBJECT) UTF-8 ALL",
    b"SORT (SUBJECT DATE) UTF-8 ALL",
    b"SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
    b"SORT (DISPLAYFROM) UTF-8 ALL",
    b"SORT (DISPLAYTO) UTF-8 ALL",
    b"SORT (REVERSE DISPLAYFROM) UTF-8 ALL",
    b"SORT (FROM DATE) UTF-8 UNSEEN",
    b"UID SORT (SIZE) UTF-8 ALL",
    b"SORT (size) us-ascii SEEN",
    b"SORT (SIZE) ISO-8859-1 ALL",
    b"SORT (SIZE) UTF-8 SUBJECT lunch",
    b"SORT (FOO) UTF-8 ALL",
    b"SORT () UTF-8 ALL",
    b"SORT (REVERSE) UTF-8 ALL",
    b"SORT (SIZE) UTF-8",
    b"SORT SIZE UTF-8 ALL",
    b"SORT (SIZE)",
    b"SORT (REVERSE REVERSE SIZE) UTF-8 ALL",
    b"SORT (SIZE) X-NOSUCH ALL",
    b"SORT (ARRIVAL) UTF-8 9",
    b"THREAD ORDEREDSUBJECT UTF-8 ALL",
    b"THREAD REFERENCES UTF-8 ALL",
    b"THREAD REFS UTF-8 ALL",
]

THREAD_COMMANDS = [
    b"SELECT INBOX",
    b"THREAD ORDEREDSUBJECT UTF-8 ALL",
    b"THREAD REFERENCES UTF-8 ALL",
    b"THREAD REFS UTF-8 ALL",
    b"THREAD REFS UTF-8 NOT 1",
    b"THREAD REFS UTF-8 2:4",
    b"THREAD REFS UTF-8 NOT 3",
    b"UID THREAD REFERENCES UTF-8 ALL",
    b"THREAD REFERENCES UTF-8 NOT 1",
    b"THREAD REFERENCES UTF-8 2:4",
    b"THREAD ORDEREDSUBJECT UTF-8 2:12",
    b"THREAD ORDEREDSUBJECT UTF-8 SEEN",
    b"THREAD REFERENCES US-ASCII SUBJECT plans",
    b"THREAD FOO UTF-8 ALL",
    b"THREAD REFERENCES",
    b"THREAD REFERENCES UTF-8",
    b"THREAD (REFERENCES) UTF-8 ALL",
    b"SORT (SUBJECT) UTF-8 ALL",
    b"SORT (DATE) UTF-8 ALL",
]


def main() -> int:
    if os.geteuid() != 0 or not Path("/usr/sbin/dovecot").exists():
        print("needs root and /usr/sbin/dovecot", file=sys.stderr)
        return 1
    if LAB.exists():
        shutil.rmtree(LAB)
    (LAB / "run").mkdir(parents=True)
    (LAB / "home").mkdir()
    os.chmod(LAB, 0o755)
    os.chmod(LAB / "home", 0o755)
    (LAB / "dovecot.conf").write_text(CONFIG)
    proc = subprocess.Popen(["dovecot", "-F", "-c", str(LAB / "dovecot.conf")],
                            start_new_session=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        out = {
            "fetch": run_scenario("fetchuser", FETCH_COMMANDS),
            "condstore": run_scenario("condstoreuser", CONDSTORE_COMMANDS),
            "search": run_scenario("searchuser", SEARCH_COMMANDS),
            "extra": run_scenario("extrauser", EXTRA_COMMANDS, extra=True),
            "sort": run_scenario("sortuser", SORT_COMMANDS),
            "sort_extra": run_scenario("sortextrauser", SORT_COMMANDS, extra=True),
            "thread": run_scenario("threaduser", THREAD_COMMANDS, extra="thread"),
        }
        for name, results in out.items():
            path = FIXTURES / f"dovecot_{name}.json"
            path.write_text(json.dumps(results, indent=1, ensure_ascii=True) + "\n")
            print(f"wrote {path} ({len(results)} commands)")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
