"""A local stand-in for Supabase Auth (GoTrue), for the tests: the endpoints supabase-js
calls for email sign-in, written from Supabase's documentation of its Auth API:

* ``POST /auth/v1/token?grant_type=password`` ``{email, password}``: a session
  ``{access_token, token_type, expires_in, expires_at, refresh_token, user}``;
* ``POST /auth/v1/token?grant_type=refresh_token`` ``{refresh_token}``: a new session
  with a new refresh token (rotation). A refresh token is good once: reusing one is
  refused and, as GoTrue's reuse detection does, ends its session;
* ``GET /auth/v1/user`` (bearer): the user, refused once the session has ended;
* ``POST /auth/v1/logout?scope=global|local|others`` (bearer): ends sessions, 204;
* ``POST /auth/v1/otp?redirect_to=URL`` ``{email, create_user}``: a magic link. No mail
  is sent: the link is recorded in ``outbox`` for the test to open;
* ``GET /auth/v1/verify?token=...&type=magiclink&redirect_to=URL``: 303 to the
  redirect URL with the session in the fragment (``#access_token=...&refresh_token=...
  &expires_in=...&expires_at=...&token_type=bearer&type=magiclink``), or with
  ``#error=access_denied&error_code=otp_expired&error_description=...`` for a used or
  unknown link. A redirect URL that is not allowed falls back to the site URL.

Access tokens are HS256 JWTs with the claims Supabase issues (``sub``, ``aud``
authenticated, ``role``, ``exp``, ``iat``, ``iss`` ``<url>/auth/v1``, ``email``,
``session_id``, ``aal``), signed with the project's JWT secret, so the API verifies them
as it verifies Supabase's. Only users of the database's ``auth.users`` sign in; their
password hash lives in ``encrypted_password`` (a stand-in PBKDF2 format, not bcrypt).

Every request needs a known ``apikey`` header (as Supabase's gateway does). Answers
carry CORS headers for any origin and ``X-Supabase-Api-Version: 2024-01-01``; errors are
``{"code": "<error_code>", "message": "..."}`` as that API version defines them.

Test hooks: ``create_user(email, password)``, ``outbox`` (the magic links sent),
``session_active(session_id)``, ``refreshes`` (refresh grants served)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import psycopg

API_VERSION = "2024-01-01"
PREFIX = "/auth/v1"
_ITERATIONS = 1000  # a test stand-in: cheap on purpose


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class _Session:
    id: str
    user_id: str
    refresh_token: str
    active: bool = True
    used: set[str] = field(default_factory=set)  # refresh tokens already exchanged


@dataclass
class MagicLink:
    email: str
    url: str  # the link a mail would carry (to /auth/v1/verify)
    redirect_to: str


@dataclass
class GoTrueServer:
    conninfo: str  # the project's database (auth.users)
    jwt_secret: str
    apikeys: set[str]
    site_url: str = ""
    redirect_urls: list[str] = field(default_factory=list)  # allowed redirect_to prefixes
    token_ttl: int = 3600  # seconds an access token lives
    url: str = ""  # where clients reach it (set by the caller when behind a front)
    outbox: list[MagicLink] = field(default_factory=list)
    refreshes: int = 0
    _sessions: dict[str, _Session] = field(default_factory=dict)
    _otps: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (user id, expiry)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    # -- test hooks ------------------------------------------------------------------

    def create_user(self, email: str, password: str) -> str:
        """A confirmed user in ``auth.users`` who signs in with ``password``."""
        user_id = str(uuid.uuid4())
        with psycopg.connect(self.conninfo, autocommit=True) as db:
            db.execute(
                "insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at) "
                "values (%s, 'authenticated', 'authenticated', %s, %s, now())",
                (user_id, email, _hash(password)),
            )
        return user_id

    def session_active(self, session_id: str) -> bool:
        with self._lock:
            found = self._sessions.get(session_id)
            return bool(found and found.active)

    @property
    def issuer(self) -> str:
        return f"{self.url}{PREFIX}"

    # -- serving -----------------------------------------------------------------------

    def start(self) -> int:
        """Listen on a free loopback port in a thread; return the port."""
        server = self

        class Handler(_Handler):
            gotrue = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        port = int(self._httpd.server_address[1])
        self.url = self.url or f"http://127.0.0.1:{port}"
        return port

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @contextlib.contextmanager
    def running(self) -> Iterator[GoTrueServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # -- the endpoints -----------------------------------------------------------------

    def password_grant(self, body: dict[str, Any]) -> dict[str, Any]:
        email, password = str(body.get("email") or ""), str(body.get("password") or "")
        user = self._user_by_email(email)
        if user is None or not _check(password, user.get("encrypted_password")):
            raise AuthError(400, "invalid_credentials", "Invalid login credentials")
        return self._new_session(user)

    def refresh_grant(self, body: dict[str, Any]) -> dict[str, Any]:
        token = str(body.get("refresh_token") or "")
        with self._lock:
            session = next((s for s in self._sessions.values() if s.refresh_token == token or token in s.used), None)
            if session is None or not session.active:
                raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
            if token in session.used:
                session.active = False  # reuse detected: the whole session is revoked
                raise AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
            session.used.add(token)
            session.refresh_token = secrets.token_urlsafe(16)
            self.refreshes += 1
        user = self._user_by_id(session.user_id)
        if user is None:
            raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        return self._session_body(user, session)

    def user(self, authorization: str | None) -> dict[str, Any]:
        claims = self._claims(authorization)
        user = self._user_by_id(str(claims["sub"]))
        if user is None:
            raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        return _user_body(user)

    def logout(self, authorization: str | None, scope: str) -> None:
        claims = self._claims(authorization)
        with self._lock:
            for session in self._sessions.values():
                if session.user_id != claims["sub"]:
                    continue
                mine = session.id == claims.get("session_id")
                if scope == "global" or (scope == "local" and mine) or (scope == "others" and not mine):
                    session.active = False

    def otp(self, body: dict[str, Any], redirect_to: str | None) -> dict[str, Any]:
        email = str(body.get("email") or "")
        if not email:
            raise AuthError(400, "validation_failed", "An email address is required")
        user = self._user_by_email(email)
        if user is None:
            if body.get("create_user") is False:
                raise AuthError(422, "otp_disabled", "Signups not allowed for otp")
            self.create_user(email, secrets.token_urlsafe(16))
            user = self._user_by_email(email)
        assert user is not None
        token = secrets.token_urlsafe(24)
        target = self._redirect(redirect_to)
        with self._lock:
            self._otps[token] = (str(user["id"]), time.time() + 3600)
        link = f"{self.issuer}/verify?" + urlencode({"token": token, "type": "magiclink", "redirect_to": target})
        self.outbox.append(MagicLink(email, link, target))
        return {}

    def verify(self, query: dict[str, str]) -> str:
        """The Location a verify link redirects to."""
        target = self._redirect(query.get("redirect_to"))
        with self._lock:
            found = self._otps.pop(query.get("token", ""), None)
        if found is None or found[1] < time.time() or query.get("type") not in ("magiclink", "email"):
            error = {"error": "access_denied", "error_code": "otp_expired", "error_description": "Email link is invalid or has expired"}
            return f"{target}#{urlencode(error)}"
        user = self._user_by_id(found[0])
        if user is None:
            return f"{target}#{urlencode({'error': 'server_error', 'error_description': 'the user is gone'})}"
        session = self._new_session(user)
        fragment = {k: str(session[k]) for k in ("access_token", "expires_at", "expires_in", "refresh_token", "token_type")}
        return f"{target}#{urlencode({**fragment, 'type': 'magiclink'})}"

    # -- helpers -------------------------------------------------------------------------

    def _new_session(self, user: dict[str, Any]) -> dict[str, Any]:
        session = _Session(str(uuid.uuid4()), str(user["id"]), secrets.token_urlsafe(16))
        with self._lock:
            self._sessions[session.id] = session
        return self._session_body(user, session)

    def _session_body(self, user: dict[str, Any], session: _Session) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": str(user["id"]), "aud": "authenticated", "exp": now + self.token_ttl, "iat": now,
            "email": user["email"], "phone": "", "role": user.get("role") or "authenticated", "aal": "aal1",
            "session_id": session.id, "is_anonymous": False,
            "app_metadata": {"provider": "email", "providers": ["email"]}, "user_metadata": {},
        }  # fmt: skip
        token = jwt.encode(claims, self.jwt_secret, algorithm="HS256")
        return {
            "access_token": token, "token_type": "bearer", "expires_in": self.token_ttl, "expires_at": now + self.token_ttl,
            "refresh_token": session.refresh_token, "user": _user_body(user),
        }  # fmt: skip

    def _claims(self, authorization: str | None) -> dict[str, Any]:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if not token:
            raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
        try:
            claims: dict[str, Any] = jwt.decode(token, self.jwt_secret, algorithms=["HS256"], audience="authenticated")
        except jwt.InvalidTokenError as exc:
            raise AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc}") from None
        if not self.session_active(str(claims.get("session_id") or "")):
            raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
        return claims

    def _redirect(self, wanted: str | None) -> str:
        if wanted and any(wanted.startswith(allowed) for allowed in self.redirect_urls):
            return wanted
        return self.site_url or self.url

    def _user_by_email(self, email: str) -> dict[str, Any] | None:
        return self._user("lower(email) = lower(%s)", email)

    def _user_by_id(self, user_id: str) -> dict[str, Any] | None:
        return self._user("id = %s::uuid", user_id)

    def _user(self, where: str, value: str) -> dict[str, Any] | None:
        with psycopg.connect(self.conninfo, autocommit=True) as db:
            cur = db.execute(
                f"select id::text, email, role, encrypted_password, email_confirmed_at, created_at from auth.users where {where}",  # noqa: S608 - fixed fragments
                (value,),
            )
            row = cur.fetchone()
            if row is None:
                return None
            return {k.name: v for k, v in zip(cur.description or [], row, strict=True)}


def _user_body(user: dict[str, Any]) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": user["id"], "aud": "authenticated", "role": user.get("role") or "authenticated", "email": user["email"],
        "email_confirmed_at": iso(user.get("email_confirmed_at")), "phone": "", "created_at": iso(user.get("created_at")),
        "app_metadata": {"provider": "email", "providers": ["email"]}, "user_metadata": {}, "identities": [],
        "is_anonymous": False,
    }  # fmt: skip


def _hash(password: str) -> str:
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), _ITERATIONS).hex()
    return f"pbkdf2${salt}${digest}"


def _check(password: str, stored: Any) -> bool:
    if not isinstance(stored, str) or stored.count("$") != 2:
        return False
    _, salt, digest = stored.split("$")
    return secrets.compare_digest(hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), _ITERATIONS).hex(), digest)


class _Handler(BaseHTTPRequestHandler):
    gotrue: GoTrueServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # quiet: the tests assert on outcomes

    def do_OPTIONS(self) -> None:  # noqa: N802 - the stdlib's naming
        self._answer(HTTPStatus.NO_CONTENT, None)

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        auth = self.gotrue
        try:
            if parts.path == f"{PREFIX}/verify" and method == "GET":  # a link in a mail: no apikey
                self.send_response(HTTPStatus.SEE_OTHER)
                self.send_header("Location", auth.verify(query))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("apikey") not in auth.apikeys:
                raise AuthError(401, "no_api_key", "No API key found in request")
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise AuthError(400, "bad_json", "the body must be a JSON object")
            route = (method, parts.path)
            if route == ("POST", f"{PREFIX}/token") and query.get("grant_type") == "password":
                self._answer(HTTPStatus.OK, auth.password_grant(body))
            elif route == ("POST", f"{PREFIX}/token") and query.get("grant_type") == "refresh_token":
                self._answer(HTTPStatus.OK, auth.refresh_grant(body))
            elif route == ("GET", f"{PREFIX}/user"):
                self._answer(HTTPStatus.OK, auth.user(self.headers.get("Authorization")))
            elif route == ("POST", f"{PREFIX}/logout"):
                auth.logout(self.headers.get("Authorization"), query.get("scope", "global"))
                self._answer(HTTPStatus.NO_CONTENT, None)
            elif route == ("POST", f"{PREFIX}/otp"):
                self._answer(HTTPStatus.OK, auth.otp(body, query.get("redirect_to")))
            else:
                raise AuthError(404, "not_found", f"no endpoint {method} {parts.path}")
        except AuthError as error:
            self._answer(HTTPStatus(error.status), {"code": error.code, "message": error.message})
        except ValueError:
            self._answer(HTTPStatus.BAD_REQUEST, {"code": "bad_json", "message": "the body is not JSON"})

    def _answer(self, status: HTTPStatus, body: dict[str, Any] | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        origin = self.headers.get("Origin")
        if origin:  # GoTrue answers browsers of any origin (the apikey is public)
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers") or "*")
            self.send_header("Access-Control-Expose-Headers", "X-Supabase-Api-Version")
        self.send_header("X-Supabase-Api-Version", API_VERSION)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
