"""Handing Sieve's outgoing mails to the MTA, as Dovecot's lib-smtp
smtp-submit.c does: `sendmail_path -i -f SENDER -- RCPT...` (the null
sender as `<>`), or SMTP to `submission_host` (`host[:port]`, port 25)."""

from __future__ import annotations

import asyncio
import smtplib

from maa_server.sieve.replies import OutgoingMail

SEND_TIMEOUT = 60.0  # Dovecot's submission_timeout default (30 s) plus the child's start


class SendError(Exception):
    """The mail could not be handed over; the text says why (Dovecot's
    words: `Sendmail program returned error`). For a sendmail program, its
    pid, exit code and stderr lines, which Dovecot logs."""

    def __init__(self, message: str, pid: int = 0, exit_code: int | None = None,
                 stderr: list[str] | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.exit_code = exit_code
        self.stderr = stderr or []


async def send_mail(mail: OutgoingMail, *, sendmail_path: str, submission_host: str,
                    helo_name: str = "localhost") -> None:
    if submission_host:
        await asyncio.to_thread(_smtp_send, submission_host, mail, helo_name)
        return
    try:
        proc = await asyncio.create_subprocess_exec(
            sendmail_path, "-i", "-f", mail.sender or "<>", "--", *mail.recipients,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise SendError(f"execv({sendmail_path}) failed: {exc.strerror or exc}") from exc
    try:
        _, err = await asyncio.wait_for(proc.communicate(mail.data), SEND_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SendError(f"{sendmail_path} timed out") from None
    if proc.returncode != 0:
        lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
        raise SendError("Sendmail program returned error", proc.pid, proc.returncode, lines)


def _smtp_send(host: str, mail: OutgoingMail, helo_name: str) -> None:
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    try:
        # An explicit HELO name: smtplib's default asks DNS for our FQDN.
        with smtplib.SMTP(name, int(port or 25), local_hostname=helo_name, timeout=30) as smtp:
            data = mail.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            smtp.sendmail(mail.sender, list(mail.recipients), data)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        raise SendError(f"smtp({host}): {exc}") from exc
