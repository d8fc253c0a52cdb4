"""The control socket: `maa-adm reload|stop|who|kick` talk to the running
daemon through `<base_dir>/maa-control` (mode 0600, so only the daemon's
user and root may use it). One JSON object per line each way."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

CONTROL_SOCKET_NAME = "maa-control"
MAX_REQUEST = 65536

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def control_path(base_dir: str) -> str:
    return os.path.join(base_dir, CONTROL_SOCKET_NAME)


async def start_control_server(path: str, handle: Handler) -> asyncio.AbstractServer:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if not line:
                return
            try:
                request = json.loads(line[:MAX_REQUEST])
                if not isinstance(request, dict):
                    raise ValueError("request is not an object")
                reply = await handle(request)
            except (ValueError, KeyError, TypeError) as exc:
                reply = {"ok": False, "error": f"bad request: {exc}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    # Create it with 0600 from the start: no window where others can connect.
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_client, path=path)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return server


class ControlUnavailable(Exception):
    """No daemon answers on the control socket."""


def call(path: str, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Blocking client used by maa-adm."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            # doveadm's words when its socket is not there (net_connect_unix).
            raise ControlUnavailable(f"net_connect_unix({path}) failed: {exc.strerror or exc}") from exc
        data = b""
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ControlUnavailable(f"{path}: {exc.strerror or exc}") from exc
    if not data:
        raise ControlUnavailable(f"{path}: the daemon closed the connection without answering")
    try:
        reply = json.loads(data)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ControlUnavailable(f"{path}: unexpected answer")
    return reply
