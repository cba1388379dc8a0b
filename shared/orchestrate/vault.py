"""Users' named secrets, read by http steps as ``{{ secrets.NAME }}``.

A value is sealed with AES-256-GCM under the service's key (``ORCHESTRATE_SECRETS_KEY``,
never stored in the database), bound to its owner and name (associated data), so a
sealed value copied to another row or user does not open. Where secrets come from is
a ``Secrets`` source: the database for the service (``orchestrate.db.secrets``), a
mapping for a local ``orchestrate run`` (the environment and ``--secret``)."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Collection, Mapping
from typing import Protocol

from .errors import ConfigError, OrchestrateError
from .spec.model import SECRET_NAME_PATTERN

KEY_BYTES = 32
MAX_VALUE = 8192  # characters of one secret's value
ENV_PREFIX = "ORCHESTRATE_SECRET_"  # a local run reads ORCHESTRATE_SECRET_API_TOKEN as API_TOKEN
_VERSION = b"\x01"  # the sealed format: version, 12-byte nonce, ciphertext and tag
_NONCE = 12


class SecretUnreadable(OrchestrateError):
    """A stored value that does not open with the service's key (another key, or not
    written by Orchestrate)."""

    type = "secret-unreadable"


def name_problem(name: str) -> str | None:
    """What is wrong with a secret's name, or None."""
    if re.fullmatch(SECRET_NAME_PATTERN, name) is None:
        return f"secret name {name[:80]!r} is not valid: 1 to 64 upper-case letters, digits and _, starting with a letter (as in API_TOKEN)"
    return None


def value_problem(value: str) -> str | None:
    if not value:
        return "a secret's value must not be empty"
    if len(value) > MAX_VALUE:
        return f"a secret's value has at most {MAX_VALUE} characters (this one has {len(value)})"
    if "\x00" in value:
        return "a secret's value must not contain NUL characters"
    return None


def new_key() -> str:
    """A fresh key in the form ``ORCHESTRATE_SECRETS_KEY`` takes: base64 of 32 bytes."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class SecretBox:
    """Seals and opens secret values with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != KEY_BYTES:
            raise ConfigError(f"ORCHESTRATE_SECRETS_KEY must be {KEY_BYTES} bytes, base64-encoded (got {len(key)} bytes)")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        try:
            key = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("ORCHESTRATE_SECRETS_KEY is not base64; make one with: python -c \"import base64, os; print(base64.b64encode(os.urandom(32)).decode())\"") from None
        return cls(key)

    @classmethod
    def optional(cls, value: str | None) -> SecretBox | None:
        """The box for a configured key; None without one (secrets then cannot be stored
        or read, and what needs them fails naming the setting)."""
        return cls.from_setting(value) if value else None

    def seal(self, owner_id: str, name: str, value: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, value.encode(), _bound(owner_id, name))

    def open(self, owner_id: str, name: str, sealed: bytes) -> str:
        from cryptography.exceptions import InvalidTag

        if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE + 16:
            raise SecretUnreadable(f"secret {name} was not stored by Orchestrate; set it again")
        try:
            return self._aead.decrypt(sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :], _bound(owner_id, name)).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise SecretUnreadable(f"secret {name} cannot be decrypted with this service's key (was ORCHESTRATE_SECRETS_KEY changed?); set it again") from None


def _bound(owner_id: str, name: str) -> bytes:
    return f"orchestrate-secret:{owner_id}:{name}".encode()


class Secrets(Protocol):
    """Where a run's secrets come from."""

    async def missing(self, owner_id: str | None, names: Collection[str]) -> list[str]:
        """The names among ``names`` the owner has no secret for (sorted)."""
        ...

    async def reveal(self, owner_id: str | None, names: Collection[str]) -> dict[str, str]:
        """The values of the owner's secrets among ``names`` (absent: not found).
        SecretUnreadable if a stored value does not open."""
        ...


class StaticSecrets:
    """Secrets given to this process (a local run): the same for every owner."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    async def missing(self, owner_id: str | None, names: Collection[str]) -> list[str]:
        return sorted(n for n in names if n not in self._values)

    async def reveal(self, owner_id: str | None, names: Collection[str]) -> dict[str, str]:
        return {n: self._values[n] for n in names if n in self._values}


def from_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``ORCHESTRATE_SECRET_<NAME>`` variables as secrets (invalid names are left out:
    the variable could be anything the environment happens to hold)."""
    found = {key[len(ENV_PREFIX) :]: value for key, value in env.items() if key.startswith(ENV_PREFIX) and value}
    return {name: value for name, value in found.items() if name_problem(name) is None}
