"""Local development auth: a per-user HS256 secret (created once, kept across restarts)
and development tokens signed with it, for users of the local database only."""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..settings import Settings

TOKEN_HOURS = 24.0


def data_dir() -> Path:
    import platformdirs

    return platformdirs.user_data_path("orchestrate", appauthor=False)


def secret_file() -> Path:
    return data_dir() / "jwt-secret"


def local_secret(path: Path | None = None) -> str:
    """The local signing secret, generated on first use (readable by this user only)."""
    return _kept(path or secret_file(), lambda: secrets.token_urlsafe(48), lambda value: len(value) >= 32)


def local_secrets_key(path: Path | None = None) -> str:
    """The local server's key for users' secrets (``ORCHESTRATE_SECRETS_KEY`` unset),
    made on first use and kept beside the database: without it, stored secrets are lost."""
    from ..vault import new_key

    return _kept(path or data_dir() / "secrets-key", new_key, bool)


def _kept(path: Path, make: Callable[[], str], usable: Callable[[str], bool]) -> str:
    """The value kept in ``path``, or a new one written there (readable by this user only)."""
    if path.is_file():
        value = path.read_text(encoding="utf-8").strip()
        if usable(value):
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def with_local_auth(settings: Settings) -> Settings:
    """Settings the local server verifies tokens with: the configured secret or Supabase
    project, else the local secret."""
    if settings.supabase_jwt_secret or settings.supabase_url:
        return settings
    return settings.with_(supabase_jwt_secret=local_secret())


def is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def links_enabled(settings: Settings) -> bool:
    """True when the server signs development tokens itself (an HS256 secret and no
    hosted Supabase project): only then do one-time sign-in links exist."""
    return bool(settings.supabase_jwt_secret) and (not settings.supabase_url or is_local(settings.supabase_url))


def signing_secret(settings: Settings) -> str:
    """The secret development tokens are signed with; refused for a hosted project,
    whose tokens only Supabase Auth should issue."""
    if settings.supabase_url and not is_local(settings.supabase_url):
        raise ConfigError(
            f"SUPABASE_URL points at {urlsplit(settings.supabase_url).hostname}, not a local server: "
            "development tokens are for local use only; sign in through Supabase Auth to get a real one"
        )
    if settings.supabase_jwt_secret:
        return settings.supabase_jwt_secret
    if settings.supabase_url:
        raise ConfigError("set SUPABASE_JWT_SECRET to the local Supabase's JWT secret to mint tokens for it")
    return local_secret()


def mint(settings: Settings, user_id: str, email: str, *, hours: float = TOKEN_HOURS) -> str:
    """A token shaped like a Supabase Auth access token."""
    import jwt

    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "email": email,
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + int(hours * 3600),
        "app_metadata": {"provider": "orchestrate-dev"},
        "user_metadata": {},
        "is_anonymous": False,
    }
    if settings.supabase_url:
        claims["iss"] = f"{settings.supabase_url}/auth/v1"
    return jwt.encode(claims, signing_secret(settings), algorithm="HS256")


def ensure_user(conninfo: str, email: str) -> str:
    """The id of the user with ``email`` in ``auth.users``, created if missing."""
    from ..db.connect import connect
    from ..db.migrate import migrate

    with connect(conninfo, label="the database", autocommit=True) as conn:
        ready = conn.execute("select to_regclass('auth.users') is not null").fetchone()
    if not (ready and ready[0]):
        migrate(conninfo)  # a fresh local database: the schema (and auth.users) first
    with connect(conninfo, label="the database") as conn, conn.transaction():
        row = conn.execute("select id::text from auth.users where lower(email) = lower(%s) limit 1", (email,)).fetchone()
        if row:
            return str(row[0])
        user_id = str(uuid.uuid4())
        conn.execute(
            "insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at) "
            "values (%s, 'authenticated', 'authenticated', %s, now(), '{\"provider\": \"orchestrate-dev\"}', '{}', now(), now())",
            (user_id, email),
        )
    return user_id
