"""Users' named secrets in Postgres (``public.user_secrets``; see its migration).

What a user does (``put``, ``names``, ``delete``) runs as that user under RLS; reading
values (``reveal``) runs on the service connection for a run's owner, for the step
runner only. The value is sealed here (``vault.SecretBox``) before it reaches SQL."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..errors import ConfigError
from ..vault import SecretBox
from .store import PostgresStore, valid_id


class PostgresSecrets:
    def __init__(self, store: PostgresStore, box: SecretBox | None) -> None:
        self.store = store
        self._box = box  # None: this process cannot seal or open values (names still work)

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            raise ConfigError("ORCHESTRATE_SECRETS_KEY is not set: this service cannot store or read secrets")
        return self._box

    async def put(self, user_id: str, name: str, value: str) -> None:
        sealed = self.box.seal(user_id, name, value)
        async with self.store.transaction(user_id) as conn:
            await conn.execute(
                "insert into public.user_secrets (owner_id, name, value) values (%s, %s, %s)"
                " on conflict (owner_id, name) do update set value = %s",
                (user_id, name, sealed, sealed),
            )

    async def names(self, user_id: str) -> list[dict[str, Any]]:
        async with self.store.transaction(user_id) as conn:
            cur = await conn.execute("select name, created_at, updated_at from public.user_secrets order by name")
            rows = await cur.fetchall()
        return [{"name": name, "created_at": created, "updated_at": updated} for name, created, updated in rows]

    async def delete(self, user_id: str, name: str) -> bool:
        async with self.store.transaction(user_id) as conn:
            cur = await conn.execute("delete from public.user_secrets where name = %s returning name", (name,))
            return await cur.fetchone() is not None

    async def missing(self, owner_id: str | None, names: Collection[str]) -> list[str]:
        found = {name for name, _ in await self._rows(owner_id, names)}
        return sorted(set(names) - found)

    async def reveal(self, owner_id: str | None, names: Collection[str]) -> dict[str, str]:
        rows = await self._rows(owner_id, names)
        if rows:
            assert owner_id is not None
            return {name: self.box.open(owner_id, name, bytes(value)) for name, value in rows}
        return {}

    async def _rows(self, owner_id: str | None, names: Collection[str]) -> list[tuple[str, bytes]]:
        """The owner's rows among ``names``, on the service connection."""
        if owner_id is None or not valid_id(owner_id) or not names:
            return []
        async with self.store.pool.connection() as conn:
            cur = await conn.execute(
                "select name, value from public.user_secrets where owner_id = %s and name = any(%s)", (owner_id, list(names))
            )
            return [(name, value) for name, value in await cur.fetchall()]

