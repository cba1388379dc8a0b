"""Supabase access tokens: every bad token answers 401 with a WWW-Authenticate
challenge; asymmetric keys come from the project's JWKS (a local HTTP server here)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from orchestrate.api import Services, create_app
from orchestrate.errors import ConfigError
from orchestrate.settings import Settings

from .conftest import SECRET, make_token


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": user, "aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 600, **overrides}


async def _get(client: httpx.AsyncClient, token: str | None, scheme: str = "Bearer") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return await client.get("/v1/workflows", headers=headers)


async def test_a_valid_token_is_accepted(client: httpx.AsyncClient, user: str) -> None:
    response = await _get(client, make_token(user))
    assert response.status_code == 200 and response.json() == {"items": [], "next_cursor": None}


async def test_a_missing_token_is_401_with_a_bare_challenge(client: httpx.AsyncClient) -> None:
    response = await _get(client, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="orchestrate"'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "missing-token"


async def test_every_bad_token_is_401(client: httpx.AsyncClient, user: str) -> None:
    now = int(time.time())
    header = {"alg": "none", "typ": "JWT"}
    cases = {
        "expired": make_token(user, exp=now - 3600, iat=now - 7200),
        "not yet valid": make_token(user, nbf=now + 3600),
        "wrong audience": make_token(user, aud="anon"),
        "no audience": make_token(user, aud=None),
        "no expiry": make_token(user, exp=None),
        "wrong signature": make_token(user, secret="another-secret-" + "0123456789abcdef" * 3),
        "tampered": make_token(user)[:-4] + "AAAA",
        "alg none": f"{_b64(header)}.{_b64(_claims(user))}.",
        "alg none, signed": f"{_b64(header)}.{_b64(_claims(user))}.c2ln",
        "malformed": "not.a.jwt",
        "garbage": "x",
        "subject not a uuid": make_token(user, sub="admin"),
        "anon role": make_token(user, role="anon"),
        "service role": make_token(user, role="service_role"),
        "HS512": jwt.encode(_claims(user), SECRET, algorithm="HS512"),
    }
    for name, token in cases.items():
        response = await _get(client, token)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["www-authenticate"].startswith('Bearer realm="orchestrate", error="invalid_token"'), name
        assert response.json()["type"] == "invalid-token" and response.json()["detail"], name
    basic = await _get(client, "dXNlcjpwYXNz", scheme="Basic")
    assert basic.status_code == 401


def test_the_app_refuses_to_start_without_a_way_to_verify_tokens() -> None:
    with pytest.raises(ConfigError, match="SUPABASE_JWT_SECRET"):
        create_app(Settings())


class _Jwks:
    """A project's JWKS endpoint on 127.0.0.1, counting its fetches."""

    def __init__(self) -> None:
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys = [
            {**json.loads(ECAlgorithm.to_jwk(self.ec_key.public_key())), "kid": "ec-1", "alg": "ES256", "use": "sig"},
            {**json.loads(RSAAlgorithm.to_jwk(self.rsa_key.public_key())), "kid": "rsa-1", "alg": "RS256", "use": "sig"},
        ]
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path != "/auth/v1/.well-known/jwks.json":
                    self.send_error(404)
                    return
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, user: str, *, alg: str = "ES256", kid: str | None = None, **overrides: Any) -> str:
        key = self.ec_key if alg == "ES256" else self.rsa_key
        claims = _claims(user, **{"iss": f"{self.url}/auth/v1", **overrides})
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid or ("ec-1" if alg == "ES256" else "rsa-1")})


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[_Jwks]:
    server = _Jwks()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
async def asym_client(jwks_server: _Jwks, stack: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(supabase_url=jwks_server.url), services=stack)  # no HS256 secret
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        yield client


async def test_es256_and_rs256_tokens_verify_against_the_jwks(asym_client: httpx.AsyncClient, jwks_server: _Jwks, user: str) -> None:
    before = jwks_server.fetches
    for _ in range(3):
        assert (await _get(asym_client, jwks_server.token(user))).status_code == 200
        assert (await _get(asym_client, jwks_server.token(user, alg="RS256"))).status_code == 200
    assert jwks_server.fetches - before <= 1  # fetched once, then cached


async def test_asymmetric_bad_tokens_are_401(asym_client: httpx.AsyncClient, jwks_server: _Jwks, user: str) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    public_jwk = RSAAlgorithm.to_jwk(jwks_server.rsa_key.public_key())
    cases = {
        "HS256 when only asymmetric keys are configured": make_token(user, iss=f"{jwks_server.url}/auth/v1"),
        "HS256 keyed with the public key (alg confusion)": _hs256_with(public_jwk.encode(), _claims(user, iss=f"{jwks_server.url}/auth/v1")),
        "unknown kid": jwks_server.token(user, kid="nope"),
        "kid of a key of another type": jwks_server.token(user, kid="rsa-1"),
        "another key's signature": jwt.encode(_claims(user, iss=f"{jwks_server.url}/auth/v1"), stranger, algorithm="ES256", headers={"kid": "ec-1"}),
        "wrong issuer": jwks_server.token(user, iss="https://other.supabase.co/auth/v1"),
        "no issuer": jwks_server.token(user, iss=None),
        "expired": jwks_server.token(user, exp=int(time.time()) - 3600),
        "wrong audience": jwks_server.token(user, aud="anon"),
    }
    for name, token in cases.items():
        response = await _get(asym_client, token)
        assert response.status_code == 401, (name, response.text)
        assert 'error="invalid_token"' in response.headers["www-authenticate"], name


async def test_an_unreachable_jwks_is_503_not_401(stack: Services, user: str) -> None:
    app = create_app(Settings(supabase_url="http://127.0.0.1:9"), services=stack)  # nothing listens on port 9
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        response = await client.get("/v1/workflows", headers={"Authorization": f"Bearer {_ES256_SAMPLE(user)}"})
    assert response.status_code == 503 and response.json()["type"] == "auth-unavailable"


def _hs256_with(key: bytes, claims: dict[str, Any]) -> str:
    """An HS256 token keyed with arbitrary bytes (PyJWT refuses public keys as HMAC keys)."""
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'})}.{_b64(claims)}"
    signature = base64.urlsafe_b64encode(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    return f"{signing_input}.{signature}"


def _ES256_SAMPLE(user: str) -> str:  # noqa: N802
    key = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(_claims(user), key, algorithm="ES256", headers={"kid": str(uuid.uuid4())})
