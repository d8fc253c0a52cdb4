"""Side-by-side runs against the real Dovecot 2.3: the same Maildir, the same
commands, both answers normalised (timing suffix, tags, UIDVALIDITY) so a
test can assert they are equal byte for byte.

Dovecot runs privately (tests/interop/storage/dovecot_lab.RealDovecot: its
own base_dir and loopback port, user bob as nobody); maa runs in the
integration harness (user alice). `build` writes the same mailbox into both
homes before either server looks at it. Needs root and /usr/sbin/dovecot;
`require_dovecot()` skips otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from tests.integration.imap.harness import NAMESPACE, PASSWORD, ImapServer
from tests.support.raw_imap import RawImap

DOVECOT = "/usr/sbin/dovecot"
TIMING = re.compile(rb" \(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)")


def require_dovecot() -> None:
    if not os.path.exists(DOVECOT) or os.geteuid() != 0:
        pytest.skip("needs root and the real Dovecot (Debian dovecot-imapd)")


def message(n: int, subject: str, *, sender: str = "a@example.org", date: str = "",
            extra: str = "", body: str = "") -> bytes:
    """A small RFC 5322 message; `date` defaults to a fixed one per n."""
    date = date or f"Mon, {n:02d} Jun 2024 10:00:00 +0000"
    head = (f"From: {sender}\nTo: b@example.org\nSubject: {subject}\nDate: {date}\n"
            f"Message-ID: <m{n}@example.org>\n{extra}")
    return (head + "\n" + (body or f"Body of message {n}.\n")).encode()


def write_maildir(maildir: Path, messages: Iterable[tuple[bytes, str]],
                  keywords: Iterable[str] = ()) -> None:
    """Messages (bytes, maildir flag letters) in cur/, UIDs in list order,
    with a dovecot-uidlist so both servers agree on UIDVALIDITY."""
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    kws = list(keywords)
    if kws:
        (maildir / "dovecot-keywords").write_text("".join(f"{i} {k}\n" for i, k in enumerate(kws)))
    uidlist = []
    for n, (data, flags) in enumerate(messages, 1):
        crlf_size = len(data.replace(b"\n", b"\r\n"))
        base = f"{1700000000 + n}.M{n}P1.lab,S={len(data)},W={crlf_size}"
        path = maildir / "cur" / f"{base}:2,{''.join(sorted(flags))}"
        path.write_bytes(data)
        stamp = 1717200000 + 3600 * n
        os.utime(path, (stamp, stamp))
        uidlist.append(f"{n} :{base}")
    header = f"3 V1700000000 N{len(uidlist) + 1} G0123456789abcdef0123456789abcdef"
    (maildir / "dovecot-uidlist").write_text(header + "\n" + "".join(u + "\n" for u in uidlist))


class Raw(RawImap):
    """A byte-exact client, logged in."""

    def __init__(self, port: int, user: str, password: str) -> None:
        super().__init__(port)
        answer = self.command(f"LOGIN {user} {password}".encode())
        if b" OK " not in answer:
            raise RuntimeError(f"login refused: {answer!r}")


# A mailbox created during a run takes the clock as its UIDVALIDITY, and the
# two servers may create it a second apart; the written mailboxes have the
# fixed V1700000000 and stay compared as they are.
CLOCK_UIDVALIDITY = re.compile(rb"((?:UIDVALIDITY|COPYUID|APPENDUID) )(?!1700000000\b)\d{10}\b")


def normalise(data: bytes) -> bytes:
    data = TIMING.sub(b"", data)
    data = CLOCK_UIDVALIDITY.sub(rb"\1<clock>", data)
    data = re.sub(rb"(?m)^c\d+ ", b"TAG ", data)
    return re.sub(rb'TAG "c\d+"', b'TAG "TAG"', data)


class Pair:
    """Dovecot and maa on the same mailbox; `both(cmd)` -> (dovecot, maa)."""

    def __init__(self, tmp: Path, build: Callable[[Path], None], extra_config: str = "") -> None:
        from tests.interop.storage.dovecot_lab import RealDovecot, chown_tree

        require_dovecot()
        self.maa = ImapServer(tmp / "maa", extra_config=extra_config)
        build(self.maa.maildir("alice"))
        self.maa.start()
        # Dovecot's auth process (user dovecot) must reach the users file:
        # a directory of its own under /tmp, not pytest's 0700 tmp_path.
        dovecot_root = Path(tempfile.mkdtemp(prefix="maa-imap-oracle-"))
        os.chmod(dovecot_root, 0o755)
        home = dovecot_root / "home"
        home.mkdir()
        build(home / "Maildir")
        chown_tree(home)
        try:
            # The same namespace (special-use folders) as the harness gives maa.
            self.dovecot = RealDovecot(dovecot_root, extra=NAMESPACE + extra_config)
        except Exception:
            self.maa.stop()
            raise
        self.clients: list[Raw] = []
        try:
            self.d = self.client_pair()
        except Exception:
            self.close()  # never leave a Dovecot running behind a failed start
            raise

    def client_pair(self) -> tuple[Raw, Raw]:
        pair = (Raw(self.dovecot.port, "bob", PASSWORD), Raw(self.maa.port, "alice", PASSWORD))
        self.clients.extend(pair)
        return pair

    def both(self, command: str | bytes,
             clients: tuple[Raw, Raw] | None = None) -> tuple[bytes, bytes]:
        raw = command.encode() if isinstance(command, str) else command
        theirs, ours = clients or self.d
        return normalise(theirs.command(raw)), normalise(ours.command(raw))

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.dovecot.stop()
        self.maa.stop()
        shutil.rmtree(self.dovecot.root, ignore_errors=True)
