"""Webhook URLs a hostile tenant tries: refused when the run is created (422 naming
why, nothing stored) and again when sending; private addresses only with the
local-development setting; DNS lookups off the event loop, bounded in number and time."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from orchestrate.api import Services
from orchestrate.net import ssrf
from orchestrate.net.ssrf import LookupFailed, Lookups, UnsafeURL, check_target, resolve
from tests.api.conftest import bearer
from tests.fakes.receiver import Receiver

from .conftest import PAIR

ADDRESS = "unsafe-webhook-url"  # the address is not public
FORM = "invalid-request"  # the URL itself is wrong

PROBES = [
    # loopback, in every spelling
    ("http://127.0.0.1/hook", ADDRESS, "a loopback address"),
    ("http://127.8.9.10:8080/hook", ADDRESS, "a loopback address"),
    ("http://localhost/hook", ADDRESS, "a loopback name"),
    ("http://LOCALHOST./hook", ADDRESS, "a loopback name"),
    ("http://api.localhost/hook", ADDRESS, "a loopback name"),
    ("http://[::1]/hook", ADDRESS, "a loopback address"),
    ("http://[::ffff:127.0.0.1]/hook", ADDRESS, "an IPv4-mapped address carrying 127.0.0.1, a loopback address"),
    ("http://[::ffff:7f00:1]/hook", ADDRESS, "carrying 127.0.0.1"),
    ("http://2130706433/hook", FORM, "the IPv4 address 127.0.0.1 in a non-standard form"),
    ("http://0x7f000001/hook", FORM, "the IPv4 address 127.0.0.1 in a non-standard form"),
    ("http://0177.0.0.1/hook", FORM, "the IPv4 address 127.0.0.1 in a non-standard form"),
    ("http://127.1/hook", FORM, "the IPv4 address 127.0.0.1 in a non-standard form"),
    # unspecified
    ("http://0.0.0.0/hook", ADDRESS, "the unspecified address"),
    ("http://0/hook", FORM, "the IPv4 address 0.0.0.0 in a non-standard form"),
    ("http://[::]/hook", ADDRESS, "the unspecified address"),
    # cloud metadata
    ("http://169.254.169.254/latest/meta-data/", ADDRESS, "a cloud metadata address"),
    ("http://[::ffff:169.254.169.254]/", ADDRESS, "carrying 169.254.169.254, a cloud metadata address"),
    ("http://[fd00:ec2::254]/latest", ADDRESS, "a cloud metadata address"),
    ("http://169.254.170.2/v2/credentials", ADDRESS, "a cloud metadata address"),
    ("http://metadata.google.internal/computeMetadata/v1/", ADDRESS, "a private-use name"),
    # private, shared and link-local IPv4
    ("http://10.0.0.1/hook", ADDRESS, "a private address"),
    ("http://172.16.5.4/hook", ADDRESS, "a private address"),
    ("http://192.168.1.1/hook", ADDRESS, "a private address"),
    ("http://100.64.0.1/hook", ADDRESS, "a shared (carrier-grade NAT) address"),
    ("http://169.254.1.1/hook", ADDRESS, "a link-local address"),
    ("http://192.0.2.1/hook", ADDRESS, "a private address"),  # documentation range: not routable
    # IPv6: unique local, link-local, site-local
    ("http://[fc00::1]/hook", ADDRESS, "a unique local (private) address"),
    ("http://[fd12:3456:789a::1]/hook", ADDRESS, "a unique local (private) address"),
    ("http://[fe80::1]/hook", ADDRESS, "a link-local address"),
    ("http://[fe80::1%25eth0]/hook", ADDRESS, "a link-local address"),
    ("http://[fec0::1]/hook", ADDRESS, "a site-local address"),
    # IPv4 carried in IPv6: 6to4, Teredo, NAT64
    ("http://[2002:7f00:1::]/hook", ADDRESS, "a 6to4 address carrying 127.0.0.1"),
    ("http://[2002:c0a8:101::1]/hook", ADDRESS, "a 6to4 address carrying 192.168.1.1"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", ADDRESS, "a Teredo address carrying 127.0.0.1"),
    ("http://[64:ff9b::a00:1]/hook", ADDRESS, "a NAT64 address carrying 10.0.0.1"),
    # multicast, broadcast, reserved
    ("http://224.0.0.1/hook", ADDRESS, "a multicast address"),
    ("http://[ff02::1]/hook", ADDRESS, "a multicast address"),
    ("http://255.255.255.255/hook", ADDRESS, "a reserved address"),
    ("http://240.0.0.1/hook", ADDRESS, "a reserved address"),
    ("http://[::127.0.0.1]/hook", ADDRESS, "a reserved address"),
    # names the local network resolves
    ("http://printer.local/hook", ADDRESS, "a private-use name"),
    ("http://router.home.arpa/hook", ADDRESS, "a private-use name"),
    ("http://hooks/hook", ADDRESS, "a single-label name"),
    # credentials
    ("http://user:pass@example.com/hook", FORM, "must not carry credentials"),
    ("http://user@example.com/hook", FORM, "must not carry credentials"),
    ("http://:@example.com/hook", FORM, "must not carry credentials"),
    ("http://example.com\\@127.0.0.1/hook", FORM, "backslash"),
]

MALFORMED = [
    ("http:///x", "no host"),
    ("https://", "no host"),
    ("http://:80/hook", "no host"),
    ("http://example.com/" + "a" * 10_000, "at most 2048 characters"),
    ("ftp://example.com/hook", "must start with http:// or https://"),
    ("file:///etc/passwd", "must start with http:// or https://"),
    ("javascript:alert(1)", "must start with http:// or https://"),
    ("example.com/hook", "must start with http:// or https://"),
    ("http:example.com/hook", "must start with http:// or https://"),
    ("http://example.com/hook#part", "must not have a fragment"),
    ("http://exa mple.com/hook", "spaces or control characters"),
    ("http://example.com/\nhook", "spaces or control characters"),
    ("http://" + "a" * 64 + ".example.com/hook", "a label of 64 characters"),
    ("http://" + "abcdefghi." * 26 + "com/hook", "at most 253"),
    ("http://-bad-.example.com/hook", "not a valid host name"),
    ("http://a..example.com/hook", "not a valid host name"),
    ("http://exa%6dple.com/hook", "not a valid host name"),
    ("http://example.com:0/hook", "between 1 and 65535"),
    ("http://example.com:99999/hook", "malformed"),
    ("http://example.com:http/hook", "malformed"),
    ("http://[::1/hook", "malformed"),
    ("http://[not-v6]/hook", "malformed"),
    ("http://[v1.fe]/hook", "not an IPv6 address"),
    ("http://1.2.3.4.5/hook", "not a valid IPv4 address"),
    ("http://256.1.1.1/hook", "not a valid IPv4 address"),
]


def test_the_probe_list_covers_the_kinds_the_review_found() -> None:
    kinds = {reason.split(",")[0] for _, _, reason in PROBES}
    assert len(PROBES) >= 21 and len(kinds) >= 21


async def _start(client: httpx.AsyncClient, headers: dict[str, str], url: str) -> httpx.Response:
    return await client.post("/v1/runs", json={"source": PAIR, "webhook_url": url}, headers=headers)


async def test_every_probe_is_refused_at_creation_naming_why(public_api: tuple[httpx.AsyncClient, Services], make_user: Callable[..., str]) -> None:
    client, _ = public_api
    headers = bearer(make_user())
    for url, slug, reason in PROBES:
        response = await _start(client, headers, url)
        assert response.status_code == 422, (url, response.text)
        problem = response.json()
        assert problem["type"] == slug and response.headers["content-type"] == "application/problem+json", (url, problem)
        [error] = problem["errors"]
        assert error["path"] == "body.webhook_url" and reason in error["message"], (url, error)
    assert (await client.get("/v1/runs", headers=headers)).json()["items"] == []  # nothing was stored


@pytest.mark.parametrize(("url", "message"), MALFORMED)
async def test_malformed_urls_are_refused_at_creation(public_api: tuple[httpx.AsyncClient, Services], user_headers: dict[str, str], url: str, message: str) -> None:
    client, _ = public_api
    response = await _start(client, user_headers, url)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert response.json()["type"] == FORM and error["path"] == "body.webhook_url" and message in error["message"], error


@pytest.fixture
def user_headers(make_user: Callable[..., str]) -> dict[str, str]:
    return bearer(make_user())


@pytest.mark.parametrize(("url", "reason"), [(u, r) for u, _, r in PROBES] + MALFORMED)
async def test_the_sender_refuses_them_too(url: str, reason: str) -> None:
    """A URL stored before these checks existed is refused when sending, for good."""
    with pytest.raises(UnsafeURL):
        await resolve(url)


async def test_private_addresses_only_with_the_local_development_setting(
    local_api: tuple[httpx.AsyncClient, Services], user_headers: dict[str, str], receiver: Receiver
) -> None:
    client, _ = local_api
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    for url in (receiver.url, f"http://localhost:{port}/hook"):
        response = await _start(client, user_headers, url)
        assert response.status_code == 202, response.text
        assert response.json()["webhook_url"] == url  # stored as given, not normalised
    # Never, even for local development: metadata, multicast, unspecified, odd forms, credentials.
    for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://224.0.0.1/", "http://0.0.0.0/", "http://2130706433/", f"http://u:p@127.0.0.1:{port}/"):
        assert (await _start(client, user_headers, url)).status_code == 422, url


def _resolver(*addresses: str) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def test_a_name_that_resolves_privately_is_refused_without_naming_the_address() -> None:
    for answer in (["10.20.30.40"], ["93.184.215.14", "10.20.30.40"], ["::ffff:10.20.30.40"]):
        with pytest.raises(UnsafeURL) as refused:
            await check_target("https://hooks.example.com/x", resolver=_resolver(*answer))
        assert refused.value.message == "webhook host 'hooks.example.com' resolves to an address that is not public"
        with pytest.raises(UnsafeURL) as at_send:
            await resolve("https://hooks.example.com/x", resolver=_resolver(*answer))
        assert "10.20.30.40" not in at_send.value.message
    await check_target("https://hooks.example.com/x", resolver=_resolver("93.184.215.14"))  # public: fine
    target = await resolve("https://hooks.example.com:8443/x?y=1", resolver=_resolver("93.184.215.14"))
    assert (target.url, target.host, target.server_name) == ("https://93.184.215.14:8443/x?y=1", "hooks.example.com:8443", "hooks.example.com")


async def test_an_unresolvable_host_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that does not exist is refused; a lookup that cannot finish in time is
    left to the check when sending (which retries a failed lookup later)."""
    with pytest.raises(LookupFailed, match="does not resolve"):
        await check_target("https://typo.example.com/x", resolver=_resolver())

    async def silent(host: str, port: int) -> list[str]:
        await asyncio.sleep(60)
        return []

    monkeypatch.setattr(ssrf, "CREATE_LOOKUP_TIMEOUT", 0.05)
    monkeypatch.setattr(ssrf, "SEND_LOOKUP_TIMEOUT", 0.05)
    await check_target("https://slow.example.com/x", resolver=silent)  # accepted
    with pytest.raises(LookupFailed, match="did not resolve within"):
        await resolve("https://slow.example.com/x", resolver=silent)


async def test_an_unresolvable_host_is_a_422_at_the_api(
    public_api: tuple[httpx.AsyncClient, Services], user_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = public_api
    # Tests send nothing beyond loopback, DNS included: getaddrinfo answers as a real
    # resolver does for a name that does not exist.
    monkeypatch.setattr(ssrf, "_AT_CREATION", Lookups(1, getaddrinfo=_no_such_name))
    response = await _start(client, user_headers, "https://hooks.example.invalid/x")
    assert response.status_code == 422 and response.json()["type"] == "unresolvable-webhook-url"
    assert "does not resolve (no such name)" in response.json()["detail"]


def _no_such_name(host: str, port: int, **kwargs: Any) -> list[Any]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


async def test_lookups_run_in_their_own_threads_bounded_in_number() -> None:
    release = threading.Event()
    threads: list[str] = []

    def slow(host: str, port: int, **kwargs: Any) -> list[Any]:
        threads.append(threading.current_thread().name)
        release.wait(10)
        if host == "bad.example":
            raise UnicodeError("label too long")  # what getaddrinfo raises for an over-long label
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    lookups = Lookups(2, getaddrinfo=slow)
    first = asyncio.create_task(lookups("a.example", 443))
    second = asyncio.create_task(lookups("bad.example", 443))
    while len(threads) < 2:  # the event loop runs while both lookups block
        await asyncio.sleep(0.01)
    with pytest.raises(LookupFailed, match="too many lookups"):
        await lookups("c.example", 443)
    release.set()
    assert await first == ["93.184.215.14"]
    with pytest.raises(LookupFailed, match="UnicodeError"):
        await second
    assert all(name.startswith("webhook-dns") for name in threads)
    assert await lookups("d.example", 443) == ["93.184.215.14"]  # the slots came back


async def test_localhost_resolves_through_the_real_lookup_when_allowed() -> None:
    await check_target("http://localhost:9/hook", allow_private=True)
    target = await resolve("http://localhost:9/hook", allow_private=True)
    assert target.address in ("127.0.0.1", "::1") and target.host == "localhost:9"
