"""A local stand-in for Supabase Realtime, for the tests: the Phoenix-channels WebSocket
protocol as Supabase documents it, in both serializers its clients speak, and the
Broadcast-from-the-Database path:

* ``GET /realtime/v1/websocket?apikey=...&vsn=1.0.0|2.0.0``: the apikey must be a known
  publishable (anon) key, else the upgrade is refused with 401. ``vsn`` picks the
  serializer for the connection: 1.0.0 (the Python ``realtime`` client) sends JSON
  objects ``{topic, event, payload, ref}``; 2.0.0 (supabase-js) JSON arrays
  ``[join_ref, ref, topic, event, payload]``, and server broadcasts as binary frames
  (kind 4, "user broadcast": one byte each for the kind and the lengths of topic, event
  and metadata, one for the payload encoding (1 = JSON), then those strings and the
  payload), which is how realtime-js's serializer decodes them;
* ``phx_join`` on ``realtime:<topic>`` with ``config.private`` and ``access_token``: the
  token is verified (HS256 with the project secret, ``aud`` authenticated, ``exp``); a
  private topic is then authorised as Realtime does, in the real test database: a probe
  row is inserted into ``realtime.messages`` and read back as the user (role
  ``authenticated``, their claims, ``realtime.topic`` set), then rolled back, so the
  project's RLS policies decide. Refusals answer ``phx_reply`` with ``status: error`` and
  a ``reason`` (``InvalidJWTToken: ...``, ``Unauthorized: ...``);
* ``heartbeat`` on ``phoenix`` is answered; ``access_token`` on a joined topic replaces
  the channel's token (an invalid one closes the channel); a channel whose token expires
  is closed with a ``system`` error and ``phx_close``, as Realtime does;
* new rows of ``realtime.messages`` (polled; the real service reads the WAL) are pushed
  as ``broadcast`` to the joined channels of their topic, private rows only to private
  channels.

Test hooks: ``joins`` records every join's topic and outcome, ``pushed`` the ``seq`` of
every event sent per topic, ``pushed_binary`` those sent as 2.0.0 binary frames;
``drop_connections()`` closes every socket abruptly (a network drop;
``drop_from_thread()`` from another thread), and while ``accepting`` is false new
sockets are refused with 503 (an outage)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import psycopg
from psycopg import sql
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

POLL = 0.05  # seconds between reads of new realtime.messages rows
VSN_1, VSN_2 = "1.0.0", "2.0.0"
_USER_BROADCAST = 4  # realtime-js serializer: a server-to-client broadcast frame
_JSON_ENCODING = 1


@dataclass
class Channel:
    conn: ServerConnection
    topic: str  # as the client names it: realtime:<sub_topic>
    sub_topic: str
    private: bool
    join_ref: str | None
    claims: dict[str, Any]


@dataclass
class Join:
    topic: str
    private: bool
    ok: bool
    reason: str | None = None
    vsn: str = VSN_1


@dataclass
class RealtimeServer:
    conninfo: str  # a superuser URL of the database (the real service logs in as supabase_admin)
    jwt_secret: str
    apikeys: set[str]
    joins: list[Join] = field(default_factory=list)
    token_refreshes: int = 0
    pushed: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # topic -> seqs sent
    pushed_binary: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # the 2.0.0 ones
    _channels: list[Channel] = field(default_factory=list)
    _conns: set[ServerConnection] = field(default_factory=set)
    _vsn: dict[ServerConnection, str] = field(default_factory=dict)
    _server: Server | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    url: str = ""
    accepting: bool = True
    _loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> str:
        """Start listening on loopback; return the project URL (``http://127.0.0.1:PORT``)."""
        self._loop = asyncio.get_running_loop()
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check_request, compression=None)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        with psycopg.connect(self.conninfo, autocommit=True) as conn:  # what exists now is not news
            self._seen = {str(r[0]) for r in conn.execute("select id from realtime.messages")}
        self._tasks = [asyncio.create_task(self._pump()), asyncio.create_task(self._expire())]
        return self.url

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def drop_connections(self) -> None:
        """Cut every client connection without a close handshake."""
        for conn in list(self._conns):
            conn.transport.abort()
        self._channels.clear()

    def drop_from_thread(self) -> None:
        """``drop_connections`` for a caller outside the server's event loop."""
        assert self._loop is not None, "not started"
        asyncio.run_coroutine_threadsafe(self.drop_connections(), self._loop).result(30)

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, conninfo: str, jwt_secret: str, apikeys: set[str]) -> Iterator[RealtimeServer]:
        """The server on its own event loop in a thread, for tests that are not async
        (a CLI in a subprocess)."""
        loop = asyncio.new_event_loop()
        server = cls(conninfo, jwt_secret, apikeys)
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.close()

    def joined(self, sub_topic: str) -> int:
        return sum(1 for c in self._channels if c.sub_topic == sub_topic)

    # -- connection ---------------------------------------------------------------

    def _check_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path != "/realtime/v1/websocket":
            return _http(HTTPStatus.NOT_FOUND, "not found")
        if not self.accepting:
            return _http(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable")
        query = parse_qs(parts.query)
        apikey = (query.get("apikey") or [""])[0]
        if apikey not in self.apikeys:
            return _http(HTTPStatus.UNAUTHORIZED, "invalid apikey")
        vsn = (query.get("vsn") or [VSN_1])[0]
        if vsn not in (VSN_1, VSN_2):
            return _http(HTTPStatus.BAD_REQUEST, f"unsupported vsn {vsn}")
        self._vsn[conn] = vsn
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        self._conns.add(conn)
        try:
            async for raw in conn:
                if isinstance(raw, bytes):  # a client broadcast (kind 3): not what these tests serve
                    continue
                message = json.loads(raw)
                if isinstance(message, list):  # 2.0.0: [join_ref, ref, topic, event, payload]
                    join_ref, ref, topic, event, payload = message
                    message = {"join_ref": join_ref, "ref": ref, "topic": topic, "event": event, "payload": payload}
                await self._dispatch(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self._conns.discard(conn)
            self._vsn.pop(conn, None)
            self._channels[:] = [c for c in self._channels if c.conn is not conn]

    async def _dispatch(self, conn: ServerConnection, message: dict[str, Any]) -> None:
        topic, event, ref = message["topic"], message["event"], message.get("ref")
        join_ref = message.get("join_ref")
        payload = message.get("payload") or {}
        if topic == "phoenix" and event == "heartbeat":
            await self._send(conn, topic, "phx_reply", {"status": "ok", "response": {}}, ref)
        elif event == "phx_join":
            await self._join(conn, topic, payload, ref)
        elif event == "phx_leave":
            self._channels[:] = [c for c in self._channels if not (c.conn is conn and c.topic == topic)]
            await self._send(conn, topic, "phx_reply", {"status": "ok", "response": {}}, ref, join_ref)
        elif event == "access_token":
            await self._refresh(conn, topic, str(payload.get("access_token") or ""), ref)
        else:  # client broadcasts, presence: not what these tests serve
            reply = {"status": "error", "response": {"reason": f"unsupported event {event}"}}
            await self._send(conn, topic, "phx_reply", reply, ref, join_ref)

    async def _join(self, conn: ServerConnection, topic: str, payload: dict[str, Any], ref: str | None) -> None:
        sub_topic = topic.removeprefix("realtime:")
        private = bool((payload.get("config") or {}).get("private"))
        claims, reason = self._verify(str(payload.get("access_token") or ""))
        if claims is not None and private and not await self._may_read(sub_topic, claims):
            reason = f"Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}"
        self.joins.append(Join(sub_topic, private, reason is None, reason, self._vsn.get(conn, VSN_1)))
        # A join's ref is also its join_ref: every later message of the channel names it.
        if reason is not None or claims is None:
            await self._send(conn, topic, "phx_reply", {"status": "error", "response": {"reason": reason}}, ref, ref)
            return
        self._channels.append(Channel(conn, topic, sub_topic, private, ref, claims))
        await self._send(conn, topic, "phx_reply", {"status": "ok", "response": {"postgres_changes": []}}, ref, ref)

    async def _refresh(self, conn: ServerConnection, topic: str, token: str, ref: str | None) -> None:
        channel = next((c for c in self._channels if c.conn is conn and c.topic == topic), None)
        if channel is None:
            return
        claims, reason = self._verify(token)
        if claims is None or claims.get("sub") != channel.claims.get("sub"):
            await self._close(channel, reason or "InvalidJWTToken: the token belongs to another user")
            return
        channel.claims = claims
        self.token_refreshes += 1
        if ref is not None:
            await self._send(conn, topic, "phx_reply", {"status": "ok", "response": {}}, ref, channel.join_ref)

    def _verify(self, token: str) -> tuple[dict[str, Any] | None, str | None]:
        if not token:
            return None, "InvalidJWTToken: no access token"
        try:
            claims = jwt.decode(token, self.jwt_secret, algorithms=["HS256"], audience="authenticated")
        except jwt.ExpiredSignatureError:
            return None, "InvalidJWTToken: Token has expired"
        except jwt.InvalidTokenError as exc:
            return None, f"InvalidJWTToken: {exc}"
        return claims, None

    async def _may_read(self, sub_topic: str, claims: dict[str, Any]) -> bool:
        """Realtime's join check: insert a probe message, read it as the user, roll back."""
        async with await psycopg.AsyncConnection.connect(self.conninfo) as db:
            cur = await db.execute(
                "insert into realtime.messages (topic, extension, event, payload, private) "
                "values (%s, 'broadcast', 'probe', '{}', true) returning id",
                (sub_topic,),
            )
            probe = (await cur.fetchone() or [None])[0]
            await db.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
            await db.execute("select set_config('realtime.topic', %s, true)", (sub_topic,))
            await db.execute(sql.SQL("set local role {}").format(sql.Identifier(str(claims.get("role") or "anon"))))
            cur = await db.execute("select exists (select 1 from realtime.messages where id = %s)", (probe,))
            allowed = bool((await cur.fetchone() or [False])[0])
            await db.rollback()
        return allowed

    # -- pushes -------------------------------------------------------------------

    async def _pump(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as db:
            while True:
                cur = await db.execute(
                    "select id::text, topic, event, payload, private from realtime.messages "
                    "where extension = 'broadcast' and inserted_at > now() - interval '10 minutes' order by inserted_at, id"
                )
                for id_, topic, event, payload, private in await cur.fetchall():
                    if id_ in self._seen:
                        continue
                    self._seen.add(id_)
                    for channel in [c for c in self._channels if c.sub_topic == topic and c.private == bool(private)]:
                        with contextlib.suppress(ConnectionClosed):
                            binary = await self._broadcast(channel, str(event), payload, id_)
                            if isinstance(payload, dict) and "seq" in payload:
                                self.pushed[topic].append(int(payload["seq"]))
                                if binary:
                                    self.pushed_binary[topic].append(int(payload["seq"]))
                await asyncio.sleep(POLL)

    async def _expire(self) -> None:
        while True:
            now = time.time()
            for channel in [c for c in self._channels if float(c.claims.get("exp", now + 1)) <= now]:
                await self._close(channel, "InvalidJWTToken: Token has expired")
            await asyncio.sleep(0.1)

    async def _close(self, channel: Channel, message: str) -> None:
        with contextlib.suppress(ValueError):
            self._channels.remove(channel)
        system = {"status": "error", "extension": "system", "channel": channel.sub_topic, "message": message}
        with contextlib.suppress(ConnectionClosed):
            await self._send(channel.conn, channel.topic, "system", system, None, channel.join_ref)
            await self._send(channel.conn, channel.topic, "phx_close", {}, channel.join_ref, channel.join_ref)

    async def _send(
        self, conn: ServerConnection, topic: str, event: str, payload: dict[str, Any], ref: str | None, join_ref: str | None = None
    ) -> None:
        if self._vsn.get(conn) == VSN_2:
            await conn.send(json.dumps([join_ref, ref, topic, event, payload]))
        else:
            await conn.send(json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref}))

    async def _broadcast(self, channel: Channel, event: str, payload: Any, id_: str) -> bool:
        """Push one broadcast to a channel; True when it went as a 2.0.0 binary frame."""
        meta = {"id": id_}
        if self._vsn.get(channel.conn) != VSN_2:
            body = {"type": "broadcast", "event": event, "payload": payload, "meta": meta}
            await channel.conn.send(json.dumps({"topic": channel.topic, "event": "broadcast", "payload": body, "ref": None}))
            return False
        await channel.conn.send(user_broadcast_frame(channel.topic, event, meta, payload))
        return True


def user_broadcast_frame(topic: str, event: str, meta: dict[str, Any], payload: Any) -> bytes:
    """A 2.0.0 server broadcast: ``[4, len(topic), len(event), len(meta), 1]`` then the
    topic, event and metadata (JSON) in UTF-8, then the JSON payload."""
    parts = [topic.encode(), event.encode(), json.dumps(meta).encode() if meta else b""]
    if any(len(p) > 255 for p in parts):
        raise ValueError("topic, event and metadata must each fit in 255 bytes")
    header = bytes([_USER_BROADCAST, *(len(p) for p in parts), _JSON_ENCODING])
    return header + b"".join(parts) + json.dumps(payload).encode()


def _http(status: HTTPStatus, body: str) -> Response:
    return Response(status.value, status.phrase, Headers([("Content-Type", "text/plain")]), body.encode())
