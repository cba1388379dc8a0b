"""A stand-in Supabase project on one loopback port, for the tests: Auth (the GoTrue
stand-in) under ``/auth/v1/`` and Realtime (the Phoenix-channels stand-in) under
``/realtime/v1/``, so one ``SUPABASE_URL`` serves supabase-js as a project's URL does
(it derives both from it).

The two stand-ins listen on ports of their own; a small front routes each incoming
connection by the path of its first request and then relays bytes both ways. A browser
never sends a WebSocket upgrade on a connection it used for other requests, so routing
a connection once is enough. A cut on either side cuts the other (a dropped Realtime
socket reaches the client as a drop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .gotrue_server import GoTrueServer
from .realtime_server import RealtimeServer

_HEAD_LIMIT = 64 * 1024


@dataclass
class SupabaseProject:
    url: str
    auth: GoTrueServer
    realtime: RealtimeServer


@contextlib.contextmanager
def supabase_project(
    conninfo: str, jwt_secret: str, publishable_key: str, *, site_url: str = "", redirect_urls: list[str] | None = None
) -> Iterator[SupabaseProject]:
    """Auth and Realtime for the database at ``conninfo`` (which has the Realtime
    stand-in schema), behind one URL."""
    with RealtimeServer.in_thread(conninfo, jwt_secret, {publishable_key}) as realtime:
        auth = GoTrueServer(conninfo, jwt_secret, {publishable_key}, site_url=site_url, redirect_urls=redirect_urls or [])
        auth_port = auth.start()
        realtime_port = int(realtime.url.rsplit(":", 1)[1])
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        front = asyncio.run_coroutine_threadsafe(_front(auth_port, realtime_port), loop).result(30)
        url = f"http://127.0.0.1:{front.sockets[0].getsockname()[1]}"
        auth.url = url  # tokens name the project's URL as their issuer
        try:
            yield SupabaseProject(url, auth, realtime)
        finally:
            front.close()
            asyncio.run_coroutine_threadsafe(front.wait_closed(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.close()
            auth.stop()


async def _front(auth_port: int, realtime_port: int) -> asyncio.Server:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
        port = realtime_port if path.startswith(b"/realtime/") else auth_port
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        up_writer.write(head)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(relay, "127.0.0.1", 0, limit=_HEAD_LIMIT)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()  # the other side went: so does this one (what was written is flushed first)
