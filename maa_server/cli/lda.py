"""maa-lda: local delivery from an MTA, as dovecot-lda does.

`maa-lda [-c CONFIG] [-d USER] [-m MAILBOX] [-f FROM] [-a ADDRESS] [-r ADDRESS]
[-e] [-p PATH] [-o name=value]`, message on stdin (or in PATH). Exit codes
are sysexits.h as dovecot-lda's (src/lda/main.c): 0 delivered, 67 EX_NOUSER,
75 EX_TEMPFAIL (try again later), 77 EX_NOPERM (rejected, with -e),
64 EX_USAGE. Like dovecot-lda it adds no header (observed) and logs
`lda(<user>)<<pid>><<session>>: Info: msgid=...: saved mail to INBOX`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from maa_server import logs
from maa_server.auth.mail_access import mail_access_refusal
from maa_server.delivery import DeliveryEnvelope, DeliveryFailed, deliver_message, to_lf

EX_OK = 0
EX_USAGE = 64
EX_NOUSER = 67
EX_TEMPFAIL = 75
EX_NOPERM = 77


class _UsageParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"maa-lda: {message}", file=sys.stderr)
        raise SystemExit(EX_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _UsageParser(prog="maa-lda", description="Deliver a message from stdin to a mailbox")
    parser.add_argument("-c", dest="config", metavar="CONFIG", help="configuration file")
    parser.add_argument("-d", dest="user", metavar="USER",
                        help="destination user (default: the invoking user)")
    parser.add_argument("-m", dest="mailbox", metavar="MAILBOX", default="INBOX",
                        help="destination mailbox (INBOX if it does not exist)")
    parser.add_argument("-f", dest="envelope_from", metavar="FROM", help="envelope sender")
    parser.add_argument("-a", dest="original_recipient", metavar="ADDRESS",
                        help="original recipient address (for Sieve)")
    parser.add_argument("-r", dest="final_recipient", metavar="ADDRESS",
                        help="final recipient address (for Sieve)")
    parser.add_argument("-e", dest="stderr_reject", action="store_true",
                        help="report rejections on stderr and exit 77 instead of bouncing")
    parser.add_argument("-p", dest="path", metavar="PATH", help="read the message from PATH")
    parser.add_argument("-k", dest="keep_env", action="store_true", help="accepted for dovecot-lda compatibility")
    parser.add_argument("-o", dest="overrides", metavar="NAME=VALUE", action="append", default=[],
                        help="accepted for compatibility; overrides are not applied")
    return parser


def split_mbox_from_line(data: bytes) -> tuple[bytes, str | None]:
    """An mbox `From sender date` first line is removed and gives the
    envelope sender when -f is missing (src/lda/main.c, as dovecot-lda)."""
    if not data.startswith(b"From "):
        return data, None
    end = data.find(b"\n")
    line = data[5:end if end >= 0 else len(data)].decode("utf-8", "replace").strip()
    sender = line.split(" ", 1)[0] if line else ""
    return (data[end + 1:] if end >= 0 else b""), sender or None


async def deliver(args: argparse.Namespace, data: bytes) -> int:
    from maa_server.auth import build_authenticator
    from maa_server.auth.interface import ClientInfo
    from maa_server.config import ConfigError, default_config_path, load_config
    from maa_server.protocols.context import new_session_id
    from maa_server.protocols.lmtp.settings import DeliverySettings
    from maa_server.storage.factory import open_mail_store
    from maa_server.storage.interface import MailboxError

    config_path = args.config or str(default_config_path())
    if args.config is None:
        # The embedded conf names its files relative to the checkout, as
        # maa-server and maa-adm read it (maa_server/daemon/embedded.py).
        os.chdir(Path(config_path).resolve().parent.parent)
    try:
        cfg = load_config(config_path)
    except (ConfigError, OSError) as exc:
        print(f"maa-lda: Fatal: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    try:
        logs.configure_logging(cfg)
    except OSError as exc:
        print(f"maa-lda: Fatal: can't open log: {exc}", file=sys.stderr)
        return EX_TEMPFAIL

    username = args.user or getpass.getuser()
    session_id = new_session_id()
    try:
        auth = build_authenticator(cfg)
        user = await auth.lookup_user(username, ClientInfo(protocol="lda", session_id=session_id))
    except Exception as exc:  # noqa: BLE001 - any userdb failure is temporary for the MTA
        logs.get_log(f"lda({username})").error(f"user {username}: Error looking up user: {exc}")
        print(f"maa-lda: Error: user {username}: Error looking up user: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    if user is None:
        print(f"maa-lda: Error: User {username} doesn't exist", file=sys.stderr)
        return EX_NOUSER
    settings = DeliverySettings.load(cfg, "lda")
    log = logs.get_log(logs.mail_process_prefix("lda", user.username or username, session_id))
    if os.geteuid() == 0:
        # As dovecot-lda: run as root (-d USER from an MTA), it becomes the
        # user before it touches the Maildir, so every file is the user's.
        from maa_server.daemon.privsep.drop import drop_to_user

        refused = drop_to_user(user, cfg)
    else:
        # Not root: no uid change, but the storage service still checks
        # first_valid_uid.. (mail-storage-service.c service_parse_privileges).
        refused = mail_access_refusal(user, cfg)
    if refused:
        log.error(refused)
        print(f"maa-lda: Error: {refused}", file=sys.stderr)
        return EX_TEMPFAIL
    enter_home(user.home, log, bool(cfg.get("mail_debug")))
    body = to_lf(data)
    # Sieve's envelope: -r (final recipient), else -a, else the user name
    # (src/lda/main.c falls back the same way).
    recipient = args.final_recipient or args.original_recipient or (user.username or username)
    envelope = DeliveryEnvelope(mail_from=args.envelope_from or "", rcpt_to=recipient,
                                orig_rcpt=args.original_recipient or "", mailbox=args.mailbox,
                                protocol="lda", reject_inline=args.stderr_reject)
    try:
        store = await open_mail_store(cfg, user)
        result = await deliver_message(cfg, user, body, envelope, log, store)
    except DeliveryFailed as exc:
        if exc.quota and not settings.quota_full_tempfail:
            print(f"maa-lda: {exc}", file=sys.stderr)
            return EX_NOPERM
        print(f"maa-lda: Error: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except (MailboxError, OSError) as exc:
        log.error(f"Couldn't open mail storage: {exc}")
        print(f"maa-lda: Error: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    if result.rejected is not None:
        # -e: the MTA bounces with this text (dovecot-lda prints the reason, exits 77).
        print(result.rejected, file=sys.stderr)
        return EX_NOPERM
    return EX_OK


def enter_home(home: str, log: logs.MailLog, debug: bool) -> None:
    """dovecot-lda works in the user's home, as every mail process does
    (lib-storage mail-storage-service.c): a missing home is no error, other
    failures are logged and delivery goes on."""
    if not home:
        return
    try:
        os.chdir(home)
    except FileNotFoundError:
        if debug:
            log.debug(f"Home dir not found: {home}")
    except OSError as exc:
        log.error(f"chdir({home}) failed: {exc.strerror}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure_stderr()
    try:
        if args.path:
            with open(args.path, "rb") as fh:
                data = fh.read()
        else:
            data = sys.stdin.buffer.read()
    except OSError as exc:
        print(f"maa-lda: Error: can't read the message: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    data, mbox_sender = split_mbox_from_line(data)
    if args.envelope_from is None:
        args.envelope_from = mbox_sender
    try:
        return asyncio.run(deliver(args, data))
    except KeyboardInterrupt:
        return EX_TEMPFAIL


if __name__ == "__main__":
    raise SystemExit(main())
