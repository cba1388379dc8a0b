"""One outbound request to a tenant's URL, through the SSRF guard: the host is resolved
and checked (``ssrf.resolve``), the connection goes to that checked address (the Host
header and TLS server name stay the original host's), redirects are never followed,
and the whole exchange and the answer's size are bounded. httpx loads on first use."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from .ssrf import Resolver, resolve


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes  # at most ``max_bytes``
    cut: bool  # the answer was longer than ``max_bytes``: the rest was not read


async def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    content: bytes | None = None,
    timeout: float,
    max_bytes: int,
    allow_private: bool = False,
    resolver: Resolver | None = None,
    noun: str = "webhook",
) -> Answer:
    """Send one request. Raises ``ssrf.UnsafeURL`` (never send there), ``ssrf.LookupFailed``
    (DNS), ``httpx.HTTPError`` (transport) or ``TimeoutError`` (the whole exchange took
    longer than ``timeout``)."""
    import httpx

    _quiet_transport_logs()
    target = await resolve(url, allow_private=allow_private, resolver=resolver, noun=noun)
    # No compressed answers: the size cap then bounds memory too (no decompression bomb).
    own = ("host", "accept-encoding")
    sent = {k: v for k, v in headers.items() if k.lower() not in own} | {"host": target.host, "accept-encoding": "identity"}
    # httpx's timeout bounds each read; asyncio's bounds the whole exchange (a server
    # dribbling one byte at a time must not hold the caller).
    client = httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False, verify=_tls())
    # A client per request: its pooled connection is bound to this request's checked
    # address and TLS server name, never reused for another host.
    quiet = _QUIET.set(True)
    try:
        async with asyncio.timeout(timeout), client:
            built = client.build_request(method, target.url, content=content, headers=sent, extensions={"sni_hostname": target.server_name})
            response = await client.send(built, stream=True)
            try:
                chunks: list[bytes] = []
                read, cut = 0, False
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    read += len(chunk)
                    if read > max_bytes:
                        cut = True
                        break
            finally:
                await response.aclose()
    finally:
        _QUIET.reset(quiet)
    body = b"".join(chunks)[:max_bytes]
    return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, body, cut)


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every request: building one loads the CA bundle (slow)."""
    import httpx

    return httpx.create_ssl_context()


# httpx logs every request's URL (INFO) and httpcore its exchanges (DEBUG); a URL or
# an echoed header can carry a user's secret. Those records are dropped while a guarded
# request is in flight (a context variable: other requests of the process still log).
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("orchestrate_guarded_request", default=False)
_TRANSPORT_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy")


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _QUIET.get()


@cache
def _quiet_transport_logs() -> None:
    for name in _TRANSPORT_LOGGERS:
        logging.getLogger(name).addFilter(_Quiet())
