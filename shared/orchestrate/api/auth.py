"""Supabase Auth access tokens, verified locally (no network call per request).

HS256 with the project's JWT secret, and ES256/RS256 with the project's signing keys
from ``<SUPABASE_URL>/auth/v1/.well-known/jwks.json`` (fetched lazily, matched by
``kid``, cached). Only the configured algorithms are accepted: HS256 only when a
secret is set, the asymmetric ones only when SUPABASE_URL is set; ``none`` never."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from ..errors import ConfigError
from ..settings import Settings
from .problems import ApiProblem

log = logging.getLogger("orchestrate.api.auth")

AUDIENCE = "authenticated"
LEEWAY = 30  # seconds of clock skew tolerated on exp / nbf / iat
ASYMMETRIC = ("ES256", "RS256")
JWKS_TTL = 600.0  # seconds a fetched key set is trusted before it is fetched again
JWKS_REFETCH = 30.0  # at most one fetch per this many seconds for an unknown kid
JWKS_TIMEOUT = 3.0


@dataclass(frozen=True)
class User:
    id: str  # the token's `sub`: the Supabase user id
    email: str | None = None


def unauthorized(detail: str, *, missing: bool = False) -> ApiProblem:
    # RFC 6750: no error code when the request carried no credentials at all.
    if missing:
        challenge = 'Bearer realm="orchestrate"'
    else:
        safe = detail.replace("\\", "").replace('"', "'")
        challenge = f'Bearer realm="orchestrate", error="invalid_token", error_description="{safe}"'
    return ApiProblem(401, "missing-token" if missing else "invalid-token", detail, headers={"WWW-Authenticate": challenge})


class Jwks:
    """The project's signing keys by ``kid``, fetched on first need and cached."""

    def __init__(self, url: str, *, ttl: float = JWKS_TTL, timeout: float = JWKS_TIMEOUT) -> None:
        self.url = url
        self.ttl = ttl
        self.timeout = timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = float("-inf")
        self._lock: asyncio.Lock | None = None

    async def key(self, kid: str) -> jwt.PyJWK | None:
        age = time.monotonic() - self._fetched
        if age > self.ttl or (kid not in self._keys and age > JWKS_REFETCH):
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:  # one fetch for a burst of requests
                age = time.monotonic() - self._fetched
                if age > self.ttl or (kid not in self._keys and age > JWKS_REFETCH):
                    await self._fetch()
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            if self._keys:  # keep serving with the keys we have; try again later
                log.warning("cannot refresh the JWKS from %s: %s", self.url, exc)
                self._fetched = time.monotonic() - self.ttl + JWKS_REFETCH
                return
            log.error("cannot fetch the JWKS from %s: %s", self.url, exc)
            raise ApiProblem(503, "auth-unavailable", "the token signing keys cannot be fetched; try again shortly") from None
        keys: dict[str, jwt.PyJWK] = {}
        for entry in data.get("keys", []) if isinstance(data, dict) else []:
            if not isinstance(entry, dict) or not entry.get("kid") or entry.get("use", "sig") != "sig":
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, KeyError, TypeError):
                log.warning("ignoring an unusable key %r in the JWKS", entry.get("kid"))
        self._keys = keys
        self._fetched = time.monotonic()


class Authenticator:
    """Verifies bearer tokens into a ``User``; raises a 401 ``ApiProblem`` otherwise."""

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.supabase_jwt_secret
        self.issuer = f"{settings.supabase_url}/auth/v1" if settings.supabase_url else None
        self.jwks = Jwks(f"{settings.supabase_url}/auth/v1/.well-known/jwks.json") if settings.supabase_url else None
        if self.secret is None and self.jwks is None:
            raise ConfigError("the API cannot verify tokens: set SUPABASE_JWT_SECRET, or SUPABASE_URL for the project's signing keys")
        self.algorithms = (["HS256"] if self.secret else []) + (list(ASYMMETRIC) if self.jwks else [])

    async def verify(self, token: str) -> User:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise unauthorized("the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise unauthorized(f"tokens signed with {alg!r} are not accepted here (accepted: {', '.join(self.algorithms)})")
        key: Any
        if alg == "HS256":
            key = self.secret
        else:
            assert self.jwks is not None
            kid = header.get("kid")
            jwk = await self.jwks.key(str(kid)) if isinstance(kid, str) and kid else None
            if jwk is None or jwk.algorithm_name != alg:
                raise unauthorized("the token's signing key (kid) is not one of the project's keys")
            key = jwk.key
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=AUDIENCE,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise unauthorized("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise unauthorized(f"the token's audience is not {AUDIENCE!r}") from None
        except jwt.InvalidIssuerError:
            raise unauthorized("the token was issued by another project") from None
        except jwt.InvalidSignatureError:
            raise unauthorized("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise unauthorized("the token is invalid") from None
        return _user(claims)


def _user(claims: dict[str, Any]) -> User:
    role = claims.get("role", "authenticated")
    if role != "authenticated":
        raise unauthorized(f"tokens of role {role!r} cannot call this API; sign in as a user")
    sub = claims.get("sub")
    try:
        user_id = str(uuid.UUID(str(sub)))
    except ValueError:
        raise unauthorized("the token's subject is not a user id") from None
    email = claims.get("email")
    return User(user_id, email if isinstance(email, str) else None)
