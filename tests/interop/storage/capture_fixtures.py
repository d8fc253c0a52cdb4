"""Capture byte-exact Dovecot files into tests/fixtures/dovecot_maildir/.

Run as root: `.venv/bin/python -m tests.interop.storage.capture_fixtures`.
Dovecot (LAYOUT=fs) gets APPENDs with flags and keywords, a flag STORE,
non-ASCII folders, a COPY and SUBSCRIBEs; its dovecot-uidlist, dovecot-keywords,
subscriptions, dovecot-uidvalidity and the cur/ file names are copied, with a
manifest.json of what Dovecot answered (UIDs, FLAGS, UIDVALIDITY).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from tests.interop.storage.dovecot_lab import RealDovecot

OUT = Path(__file__).resolve().parents[2] / "fixtures" / "dovecot_maildir"
MSG = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: %d\r\n\r\nBody %d\r\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # the mail user must reach its home
        capture(Path(tmp))
    print(f"captured into {OUT}")


def capture(tmp: Path) -> None:
    with RealDovecot(tmp) as dovecot:
        imap = dovecot.imap()
        imap.create("Entw&APw-rfe")
        imap.create("Projects.2024")
        imap.create("Work/Sub")
        imap.append("INBOX", r"(\Seen $Forwarded Project_X)", '"04-Jun-2024 10:00:00 +0000"', MSG % (1, 1))
        imap.append("INBOX", r"(\Answered \Flagged $Label1 Urgent)", None, MSG % (2, 2))
        imap.append("INBOX", None, None, MSG % (3, 3))
        imap.append("INBOX", None, None, (MSG % (4, 4)).replace(b"Body", b"Longer body"))
        imap.select("INBOX")
        imap.uid("STORE", "3", "+FLAGS", r"(\Deleted \Draft)")
        imap.uid("STORE", "4", "+FLAGS", r"(\Deleted)")
        imap.expunge()
        imap.uid("COPY", "1", "Entw&APw-rfe")
        for name in ("Entw&APw-rfe", "Projects.2024", "INBOX", "Work/Sub"):
            imap.subscribe(name)
        manifest: dict[str, object] = {}
        for box in ("INBOX", "Entw&APw-rfe"):
            imap.select(box)
            _, data = imap.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE INTERNALDATE)")
            _, status = imap.status(box, "(UIDVALIDITY UIDNEXT MESSAGES)")
            manifest[box] = {
                "fetch": [d.decode() for d in data if isinstance(d, bytes)],
                "status": status[0].decode(),
            }
        imap.logout()
        root = dovecot.home / "Maildir"
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        for rel in ("dovecot-uidlist", "dovecot-keywords", "subscriptions", "dovecot-uidvalidity",
                    "Entw&APw-rfe/dovecot-uidlist", "Entw&APw-rfe/dovecot-keywords",
                    "Work/Sub/dovecot-uidlist"):
            target = OUT / rel.replace("/", "__")
            target.write_bytes((root / rel).read_bytes())
        names = {}
        for box, path in (("INBOX", root), ("Entw&APw-rfe", root / "Entw&APw-rfe")):
            names[box] = sorted(f"{sub}/{n}" for sub in ("new", "cur") for n in os.listdir(path / sub))
            for entry in names[box]:
                data = (path / entry).read_bytes()
                (OUT / f"msg__{box}__{entry.replace('/', '__')}").write_bytes(data)
        manifest["files"] = names
        manifest["markers"] = sorted(n for n in os.listdir(root) if re.match(r"dovecot-uidvalidity\.", n))
        (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
