"""Where a webhook may go: http(s) only, and never to private, loopback, link-local,
multicast or reserved addresses (unless a setting allows them, for local development).
The host is resolved once, checked, and the connection goes to that checked address,
so a DNS answer cannot change between the check and the connection."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import OrchestrateError


class UnsafeURL(OrchestrateError):
    type = "unsafe-webhook-url"


@dataclass(frozen=True)
class Target:
    url: str  # the URL with the checked IP in place of the host
    host: str  # the original host: the Host header and the TLS server name
    address: str


def check_url_syntax(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of a webhook URL, or UnsafeURL saying what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"webhook URL is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"webhook URL must use http or https, not {parts.scheme or 'nothing'!r}")
    if not parts.hostname:
        raise UnsafeURL("webhook URL has no host")
    if parts.username or parts.password:
        raise UnsafeURL("webhook URL must not carry credentials")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _allowed(address: str, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 inside IPv6 (mapped, 6to4, Teredo) is judged by the IPv4 address it carries.
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if any(e is not None for e in embedded):
            return all(_allowed(str(e), allow_private) for e in embedded if e is not None)
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return False
    if allow_private:
        return True
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local)


async def resolve(url: str, *, allow_private: bool = False) -> Target:
    scheme, host, port = check_url_syntax(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeURL(f"cannot resolve webhook host {host!r}: {exc.strerror}") from None
    addresses = [str(info[4][0]) for info in infos]
    refused = [a for a in addresses if not _allowed(a, allow_private)]
    if refused or not addresses:
        raise UnsafeURL(f"webhook host {host!r} resolves to a non-public address ({', '.join(refused or addresses)})")
    address = addresses[0]
    netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    parts = urlsplit(url)
    target = parts._replace(netloc=netloc).geturl()
    return Target(target, host if parts.port is None else f"{host}:{port}", address)
