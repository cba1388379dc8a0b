"""Where a webhook (or an http step) may go: http(s) only, a real host, no credentials,
and never to private, loopback, link-local, metadata, multicast or reserved addresses
(unless a setting allows private ones, for local development). ``noun`` names the URL's
owner in messages ("webhook URL ...", "HTTP URL ...").

Checked twice. When a run is created (``check_target``): the URL strictly, an address
written in it, and what its host resolves to now, so a mistake is a 422 at once. When
the webhook is sent (``resolve``): the host is resolved again (DNS changes), checked,
and the connection goes to that checked address, so a DNS answer cannot change between
the check and the connection. Lookups run in a few threads of their own, bounded in
number and in time, never on the event loop."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import OrchestrateError

MAX_URL = 2048
CREATE_LOOKUP_TIMEOUT = 2.0  # seconds a run's creation waits for DNS before leaving it to delivery
SEND_LOOKUP_TIMEOUT = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]  # host, port -> addresses


class UnsafeURL(OrchestrateError):
    """A URL that is never sent to (its form or its address)."""

    type = "unsafe-webhook-url"


class LookupFailed(OrchestrateError):
    """The host's addresses could not be found. ``missing``: the name does not exist
    (or has no address); otherwise the lookup failed or timed out, and may work later."""

    type = "unresolvable-webhook-url"

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class WebhookURL:
    scheme: str
    host: str  # lower-case ASCII (IDNA), no brackets, no trailing dot
    port: int
    explicit_port: bool
    address: IPAddress | None  # the host is this address literal


@dataclass(frozen=True)
class Target:
    url: str  # the URL with the checked IP in place of the host
    host: str  # the Host header: the original host (and port, if given)
    server_name: str  # the TLS server name
    address: str


_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A host whose last label is a number is an IPv4 address to URL parsers and resolvers
# (WHATWG URL, inet_aton): 2130706433, 0x7f000001, 0177.0.0.1 and 127.1 all mean 127.0.0.1.
_NUMERIC = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_LOOPBACK_NAMES = ("localhost",)  # RFC 6761: localhost and *.localhost are always loopback
_PRIVATE_SUFFIXES = ("internal", "local", "localdomain", "home.arpa", "lan", "intranet", "corp")
# Cloud instance metadata: refused even where private addresses are allowed.
_METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix carries a public IPv4
_ULA = ipaddress.ip_network("fc00::/7")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def parse_url(url: str, noun: str = "webhook") -> WebhookURL:
    """The URL's parts, checked strictly; UnsafeURL names what is wrong."""
    if len(url) > MAX_URL:
        raise UnsafeURL(f"{noun} URL is {len(url)} characters long; at most {MAX_URL} are allowed")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise UnsafeURL(f"{noun} URL must not contain spaces or control characters")
    if "\\" in url:
        raise UnsafeURL(f"{noun} URL must not contain a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"{noun} URL is malformed: {exc}") from None
    if parts.scheme not in ("http", "https") or not url.lower().startswith(f"{parts.scheme}://"):
        raise UnsafeURL(f"{noun} URL must start with http:// or https://, not {url[:12]!r}")
    if "@" in parts.netloc:
        raise UnsafeURL(f"{noun} URL must not carry credentials (user:password@)")
    if "#" in url:
        raise UnsafeURL(f"{noun} URL must not have a fragment (#...): it is never sent")
    if not parts.hostname:
        raise UnsafeURL(f"{noun} URL has no host")
    if port == 0:
        raise UnsafeURL(f"{noun} URL port must be between 1 and 65535")
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname
    if parts.netloc.startswith("["):
        try:
            return WebhookURL(parts.scheme, host, port or default, port is not None, ipaddress.IPv6Address(host))
        except ValueError:
            raise UnsafeURL(f"{noun} URL host [{host}] is not an IPv6 address") from None
    host = _ascii_host(host, noun)
    last = host.rsplit(".", 1)[-1]
    if _NUMERIC.fullmatch(last):
        try:
            address: IPAddress | None = ipaddress.IPv4Address(host)
        except ValueError:
            raise UnsafeURL(_odd_ipv4(host, noun)) from None
    else:
        address = None
    return WebhookURL(parts.scheme, host, port or default, port is not None, address)


def _ascii_host(host: str, noun: str) -> str:
    name = host[:-1] if host.endswith(".") else host
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeURL(f"{noun} URL host {host!r} is not a valid host name") from None
    if len(name) > 253:
        raise UnsafeURL(f"{noun} URL host is {len(name)} characters long; a host name has at most 253")
    for label in name.split("."):
        if len(label) > 63:
            raise UnsafeURL(f"{noun} URL host has a label of {len(label)} characters; a label has at most 63")
        if not _LABEL.fullmatch(label):
            raise UnsafeURL(f"{noun} URL host {host!r} is not a valid host name (label {label!r})")
    return name


def _odd_ipv4(host: str, noun: str) -> str:
    try:
        meaning = socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return f"{noun} URL host {host!r} is not a valid IPv4 address"
    return f"{noun} URL host {host!r} is the IPv4 address {meaning} in a non-standard form; write it as {meaning}"


def refusal(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why nothing may be sent to ``ip`` ("a loopback address"), or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 carried in IPv6 (mapped, NAT64, 6to4, Teredo) is judged by the IPv4 address.
        carried: list[tuple[str, ipaddress.IPv4Address]] = []
        if ip.ipv4_mapped is not None:
            carried.append(("an IPv4-mapped address", ip.ipv4_mapped))
        if ip in _NAT64:
            carried.append(("a NAT64 address", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
        if ip.sixtofour is not None:
            carried.append(("a 6to4 address", ip.sixtofour))
        if ip.teredo is not None:
            carried.extend(("a Teredo address", v4) for v4 in ip.teredo)
        for kind, v4 in carried:
            reason = refusal(v4, allow_private=allow_private)
            if reason is not None:
                return f"{kind} carrying {v4}, {reason}"
        if carried:
            return None
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:  # before "reserved": ::1 lies in ::/8
        return None if allow_private else "a loopback address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_reserved or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "a reserved address"
    if allow_private:
        return None
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if ip in _ULA:
        return "a unique local (private) address"
    if ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_private or not ip.is_global:
        return "a private address"
    return None


def _name_refusal(host: str) -> str | None:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return "a loopback name"
    if any(host == s or host.endswith("." + s) for s in _PRIVATE_SUFFIXES):
        return "a private-use name"
    if "." not in host:
        return "a single-label name (resolved by the local network)"
    return None


class Lookups:
    """A Resolver: getaddrinfo in a few threads of our own, so a slow resolver ties up
    these, not the event loop nor its default executor, and never more than ``slots``
    lookups at once (one more fails at once instead of queueing)."""

    def __init__(self, slots: int, getaddrinfo: Callable[..., list[Any]] = socket.getaddrinfo, *, noun: str = "webhook") -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix=f"{noun.lower()}-dns")
        self._noun = noun
        self._getaddrinfo = getaddrinfo

    async def __call__(self, host: str, port: int) -> list[str]:
        if not self._slots.acquire(blocking=False):
            raise LookupFailed(f"could not look up {self._noun} host {host!r} now (too many lookups in progress)")
        try:
            future = self._pool.submit(self._lookup, host, port)
        except BaseException:
            self._slots.release()
            raise
        # Released when the lookup ends, not when its caller stops waiting (a timeout).
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)

    def _lookup(self, host: str, port: int) -> list[str]:
        try:
            infos = self._getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            missing = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
            detail = "no such name" if missing else exc.strerror
            raise LookupFailed(f"{self._noun} host {host!r} does not resolve ({detail})", missing=missing) from None
        except (UnicodeError, OSError) as exc:
            raise LookupFailed(f"{self._noun} host {host!r} does not resolve ({type(exc).__name__})") from None
        return [str(info[4][0]) for info in infos]


# One for run creation (any tenant can make many), one for sending: neither starves the other.
_AT_CREATION = Lookups(8)
_AT_SEND = Lookups(8)


async def _addresses(resolver: Resolver, host: str, port: int, timeout: float, noun: str) -> list[str]:
    try:
        async with asyncio.timeout(timeout):
            addresses = await resolver(host, port)
    except TimeoutError:
        raise LookupFailed(f"{noun} host {host!r} did not resolve within {timeout:g}s") from None
    if not addresses:
        raise LookupFailed(f"{noun} host {host!r} does not resolve (no address)", missing=True)
    return addresses


def judge(target: WebhookURL, allow_private: bool, noun: str = "webhook") -> None:
    """Refuse an address literal or a name that is not public, before any lookup."""
    if target.address is not None:
        reason = refusal(target.address, allow_private=allow_private)
        if reason is not None:
            raise UnsafeURL(f"{noun} host {target.host} is not public: {reason}")
    elif not allow_private and (reason := _name_refusal(target.host)) is not None:
        raise UnsafeURL(f"{noun} host {target.host!r} is not public: {reason}")


def _not_public(host: str, noun: str) -> UnsafeURL:
    # Never name the address: it would tell a tenant what an internal name points to.
    return UnsafeURL(f"{noun} host {host!r} resolves to an address that is not public")


async def check_target(url: str, *, allow_private: bool = False, resolver: Resolver | None = None, noun: str = "webhook") -> None:
    """At run creation: UnsafeURL if the URL may never be sent to, LookupFailed (missing)
    if its host does not exist. A lookup that fails otherwise or takes longer than
    CREATE_LOOKUP_TIMEOUT passes: the check when sending decides then."""
    target = parse_url(url, noun)
    judge(target, allow_private, noun)
    if target.address is not None:
        return
    try:
        addresses = await _addresses(resolver or _AT_CREATION, target.host, target.port, CREATE_LOOKUP_TIMEOUT, noun)
    except LookupFailed as exc:
        if exc.missing:
            raise
        return
    if any(refusal(ipaddress.ip_address(a), allow_private=allow_private) for a in addresses):
        raise _not_public(target.host, noun)


async def resolve(url: str, *, allow_private: bool = False, resolver: Resolver | None = None, noun: str = "webhook") -> Target:
    """When sending: the checked address to connect to. UnsafeURL: never send there;
    LookupFailed: the host could not be resolved now (try again later)."""
    target = parse_url(url, noun)
    judge(target, allow_private, noun)
    if target.address is not None:
        addresses = [str(target.address)]
    else:
        addresses = await _addresses(resolver or _AT_SEND, target.host, target.port, SEND_LOOKUP_TIMEOUT, noun)
    if any(refusal(ipaddress.ip_address(a), allow_private=allow_private) for a in addresses):
        raise _not_public(target.host, noun)
    address = addresses[0]
    netloc = f"[{address}]:{target.port}" if ":" in address else f"{address}:{target.port}"
    parts = urlsplit(url)
    host = f"[{target.host}]" if target.address is not None and target.address.version == 6 else target.host
    header = f"{host}:{target.port}" if target.explicit_port else host
    return Target(parts._replace(netloc=netloc).geturl(), header, target.host, address)
