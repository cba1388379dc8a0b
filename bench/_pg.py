"""Shared bench helpers: a throwaway embedded Postgres, migrated, and a loopback
proxy that counts round trips (each burst of client bytes after a server reply)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from orchestrate.db.embedded import start_embedded
from orchestrate.db.migrate import migrate


class RoundTripCounter:
    """A unix-socket proxy in front of Postgres. ``trips`` counts requests: the client
    sending after it last heard from the server (or first), i.e. network round trips."""

    def __init__(self, target_socket: str, folder: Path) -> None:
        self.target = target_socket
        self.path = folder / Path(target_socket).name
        self.folder = folder
        self.trips = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        state = {"client_turn": False}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, from_client: bool) -> None:
            try:
                while data := await src.read(65536):
                    if from_client and not state["client_turn"]:
                        self.trips += 1
                    state["client_turn"] = from_client
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        except asyncio.CancelledError:  # the benchmark is over
            pass


@asynccontextmanager
async def bench_database() -> AsyncIterator[tuple[str, str, RoundTripCounter]]:
    """Yields (direct conninfo, proxied conninfo, counter) for a migrated database with one user."""
    folder = Path(tempfile.mkdtemp(prefix="orchestrate-bench-"))
    server = start_embedded(folder / "data", database="bench", durable=True)
    try:
        migrate(server.conninfo)
        params = conninfo_to_dict(server.conninfo)
        socket = f"{params['host']}/.s.PGSQL.{params.get('port') or 5432}"
        proxy_dir = folder / "proxy"
        proxy_dir.mkdir()
        counter = RoundTripCounter(socket, proxy_dir)
        await counter.start()
        proxied = make_conninfo(server.conninfo, host=str(proxy_dir))
        yield server.conninfo, proxied, counter
        await counter.stop()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def create_user(conninfo: str) -> str:
    user_id = str(uuid.uuid4())
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, email) values (%s, %s)", (user_id, f"{user_id}@bench.test"))
    return user_id
