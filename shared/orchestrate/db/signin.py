"""One-time sign-in codes (local development auth): created for a user by the CLI,
exchanged once by the API for a development token. Short-lived and single use; only
their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from .store import PostgresStore

CODE_MINUTES = 10


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def create_code(conninfo: str, user_id: str, *, minutes: float = CODE_MINUTES) -> str:
    """A new code for ``user_id``, valid ``minutes``; codes long expired are dropped."""
    from .connect import connect

    code = secrets.token_urlsafe(24)  # 192 random bits: not guessable, short enough for a URL
    with connect(conninfo, label="the database") as conn, conn.transaction():
        conn.execute("delete from orchestrate.signin_codes where expires_at < now() - interval '1 day'")
        conn.execute(
            "insert into orchestrate.signin_codes (code_hash, user_id, expires_at) values (%s, %s, now() + make_interval(secs => %s))",
            (_hash(code), user_id, minutes * 60),
        )
    return code


async def redeem_code(store: PostgresStore, code: str) -> tuple[str, str | None] | None:
    """The (user id, email) ``code`` was made for, if it is known, unused and unexpired;
    it is used up in the same statement, so two concurrent exchanges cannot both win."""
    async with store.transaction() as conn:
        cur = await conn.execute(
            "update orchestrate.signin_codes c set used_at = now() from auth.users u "
            "where c.code_hash = %s and c.used_at is null and c.expires_at > now() and u.id = c.user_id "
            "returning c.user_id::text, u.email",
            (_hash(code),),
        )
        row = await cur.fetchone()
    return (str(row[0]), row[1]) if row else None
