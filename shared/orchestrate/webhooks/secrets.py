"""Each user's Standard Webhooks signing secret (``whsec_`` + 32 random bytes)."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row


PREFIX = "whsec_"
MIN_BYTES, MAX_BYTES = 24, 64  # Standard Webhooks' range; ours are 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_problem(secret: str) -> str | None:
    """What is wrong with a stored secret, or None. Owners can write their row through
    the Data API; the table's check constraint (same rule) refuses new bad values, this
    catches rows written before it."""
    key = secret.removeprefix(PREFIX)
    try:
        size = len(base64.b64decode(key, validate=True)) if key != secret else -1
    except (binascii.Error, ValueError):
        size = -1
    if not MIN_BYTES <= size <= MAX_BYTES:
        return f"the webhook signing secret is not a valid {PREFIX} key (base64 of {MIN_BYTES} to {MAX_BYTES} bytes): rotate it with POST /v1/webhook-secret/rotate"
    return None


async def signing_secret(conn: AsyncConnection[Any], owner_id: str, *, rotate: bool = False) -> dict[str, Any]:
    """The owner's secret (``secret``, ``created_at``, ``rotated_at``), created on first
    use, replaced when ``rotate``. One statement either way, so two concurrent first
    uses agree on one secret."""
    conflict = "do update set secret = excluded.secret, rotated_at = now()" if rotate else "do nothing"
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"insert into public.webhook_secrets (owner_id, secret) values (%s, %s) on conflict (owner_id) {conflict}",
        (owner_id, new_secret()),
    )
    await cur.execute("select secret, created_at, rotated_at from public.webhook_secrets where owner_id = %s", (owner_id,))
    row = await cur.fetchone()
    assert row is not None
    return row
