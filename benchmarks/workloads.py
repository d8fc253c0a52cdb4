"""The workloads, each an async function of a running server that returns
one figure (higher is better unless the name says otherwise)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from benchmarks.client import ImapClient, Pop3Client
from benchmarks.generate import messages
from benchmarks.servers import PASSWORD, Server

USER = "bench"
HOST = "127.0.0.1"


async def _login(server: Server, tls: bool = False) -> ImapClient:
    client = await ImapClient.connect(HOST, server.imaps if tls else server.imap, tls=tls)
    await client.login(USER, PASSWORD)
    return client


async def stress(server: Server, clients: int, seconds: float) -> float:
    """imaptest-like mixed session loop; returns commands per second."""
    sample = messages(20, seed=7)
    deadline = time.monotonic() + seconds
    done = 0

    async def one(n: int) -> None:
        nonlocal done
        rng = random.Random(n)
        while time.monotonic() < deadline:
            c = await _login(server)
            await c.command('LIST "" "*"')
            await c.command("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)")
            lines = await c.command("SELECT INBOX")
            exists = next((int(line.split()[1]) for line in lines if line.endswith(b"EXISTS\r\n")), 0)
            ops = 4
            for _ in range(5):
                if exists:
                    # Other clients expunge meanwhile: a NO [EXPUNGEISSUED] is
                    # an answer like any other (imaptest counts it too).
                    lo = rng.randint(1, exists)
                    await c.command(f"FETCH {lo}:{min(exists, lo + 9)} (UID FLAGS ENVELOPE)", check=False)
                    await c.command(f"FETCH {rng.randint(1, exists)} BODY.PEEK[]", check=False)
                    await c.command(f"STORE {rng.randint(1, exists)} +FLAGS (\\Flagged)", check=False)
                    ops += 3
            await c.command("APPEND INBOX (\\Deleted)", rng.choice(sample))
            await c.command("EXPUNGE", check=False)
            await c.command("LOGOUT")
            await c.close()
            done += ops + 3

    await asyncio.gather(*(one(i) for i in range(clients)))
    return done / seconds


async def logins(server: Server, clients: int, seconds: float) -> float:
    deadline = time.monotonic() + seconds
    done = 0

    async def one() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            c = await _login(server)
            await c.command("LOGOUT")
            await c.close()
            done += 1

    await asyncio.gather(*(one() for _ in range(clients)))
    return done / seconds


async def idle_memory(server: Server, connections: int, settle: float = 2.0,
                      window: float = 10.0) -> tuple[float, float]:
    """Memory per idle IDLE connection (KiB of PSS over all the server's
    processes) and CPU seconds per minute the server spends while they idle."""
    clients: list[ImapClient] = []
    sem = asyncio.Semaphore(50)
    # One session first, so that the processes every session needs (auth,
    # Dovecot's anvil and stats, maa-server's per-user worker) are already
    # there: what is measured is the cost of each further connection.
    first = await _login(server)
    await first.command("SELECT INBOX")
    await first.idle_start()
    clients.append(first)
    await asyncio.sleep(settle)
    base = server.pss_kib()

    async def open_one() -> None:
        async with sem:
            c = await _login(server)
            await c.command("SELECT INBOX")
            await c.idle_start()
            clients.append(c)

    await asyncio.gather(*(open_one() for _ in range(connections)))
    await asyncio.sleep(settle)
    per_conn = (server.pss_kib() - base) / connections
    cpu0 = server.cpu_seconds()
    await asyncio.sleep(window)
    cpu_per_min = (server.cpu_seconds() - cpu0) * 60 / window
    await asyncio.gather(*(c.close() for c in clients))
    return per_conn, cpu_per_min


async def envelope_fetch(server: Server, mailbox: str = "INBOX") -> float:
    """Seconds for UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE),
    the first thing a client does on a folder it has not seen; the EXAMINE
    (where a cold server scans the folder) is counted in."""
    c = await _login(server)
    t0 = time.perf_counter()
    await c.command(f"EXAMINE {mailbox}")
    t0 = time.perf_counter()
    await c.command("UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
    elapsed = time.perf_counter() - t0
    await c.close()
    return elapsed


async def body_stream(server: Server, tls: bool) -> float:
    """MB/s of UID FETCH 1:* BODY.PEEK[]."""
    c = await _login(server, tls=tls)
    await c.command("EXAMINE INBOX")
    before = c.bytes_read
    t0 = time.perf_counter()
    await c.command("UID FETCH 1:* BODY.PEEK[]")
    elapsed = time.perf_counter() - t0
    await c.close()
    return (c.bytes_read - before) / elapsed / 1e6


async def search_text(server: Server) -> float:
    """Seconds for UID SEARCH TEXT over the whole mailbox."""
    c = await _login(server)
    await c.command("EXAMINE INBOX")
    t0 = time.perf_counter()
    await c.command("UID SEARCH TEXT budget")
    elapsed = time.perf_counter() - t0
    await c.close()
    return elapsed


async def appends(server: Server, count: int) -> float:
    sample = messages(50, seed=11)
    c = await _login(server)
    await c.command('CREATE "bench-append"')
    t0 = time.perf_counter()
    for i in range(count):
        await c.command('APPEND "bench-append"', sample[i % len(sample)])
    elapsed = time.perf_counter() - t0
    await c.command('DELETE "bench-append"')
    await c.close()
    return count / elapsed


async def pop3_retr(server: Server) -> float:
    c = await Pop3Client.connect(HOST, server.pop3)
    await c.command(f"USER {USER}")
    await c.command(f"PASS {PASSWORD}")
    stat = await c.command("STAT")
    count = int(stat.split()[1])
    t0 = time.perf_counter()
    for i in range(1, count + 1):
        await c.command(f"RETR {i}", multiline=True)
    elapsed = time.perf_counter() - t0
    await c.close()
    return c.bytes_read / elapsed / 1e6


async def pop3_uidl(server: Server) -> float:
    """Seconds for UIDL of the whole INBOX, login included (a POP3 client's
    every poll)."""
    t0 = time.perf_counter()
    c = await Pop3Client.connect(HOST, server.pop3)
    await c.command(f"USER {USER}")
    await c.command(f"PASS {PASSWORD}")
    await c.command("UIDL", multiline=True)
    elapsed = time.perf_counter() - t0
    await c.close()
    return elapsed


async def lmtp_deliveries(server: Server, connections: int, count: int) -> float:
    sample = messages(20, seed=13)
    per_conn = count // connections

    async def one() -> None:
        reader, writer = await asyncio.open_connection(HOST, server.lmtp)

        async def reply(multi: bool = False) -> bytes:
            while True:
                line = await reader.readuntil(b"\n")
                if line[3:4] != b"-":
                    if not line.startswith((b"2", b"3")):
                        raise RuntimeError(line.decode(errors="replace"))
                    return line

        await reply()
        writer.write(b"LHLO bench\r\n")
        await reply()
        for i in range(per_conn):
            body = sample[i % len(sample)].replace(b"\r\n.", b"\r\n..")
            writer.write(b"MAIL FROM:<sender@example.org>\r\n")
            await reply()
            writer.write(f"RCPT TO:<{USER}>\r\n".encode())
            await reply()
            writer.write(b"DATA\r\n")
            await reply()
            writer.write(body + b".\r\n")
            await reply()
        writer.write(b"QUIT\r\n")
        await writer.drain()
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return per_conn * connections / (time.perf_counter() - t0)


Workload = Callable[[Server], Awaitable[float]]
