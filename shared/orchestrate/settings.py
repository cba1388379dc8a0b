"""One settings object, read once at the edge (CLI, function entry points) and
passed in. Library code never reads ``os.environ``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ConfigError

DEFAULT_MODEL = "gpt-4o"
DEFAULT_MOCK_DELAY = 0.3

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    default_model: str = DEFAULT_MODEL
    use_mock: bool = False
    mock_delay: float = DEFAULT_MOCK_DELAY
    database_url: str | None = None

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
        """Read settings from ``env`` (default: the process environment), after
        loading ``dotenv`` (default: ``./.env``) without overriding what is set."""
        if env is None:
            from dotenv import dotenv_values

            path = dotenv if dotenv is not None else Path.cwd() / ".env"
            file_values = {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}
            env = {**file_values, **os.environ}
        return cls(
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            default_model=env.get("ORCHESTRATE_DEFAULT_MODEL") or DEFAULT_MODEL,
            use_mock=_flag(env, "ORCHESTRATE_USE_MOCK"),
            mock_delay=_seconds(env, "ORCHESTRATE_MOCK_DELAY", DEFAULT_MOCK_DELAY),
            database_url=env.get("DATABASE_URL") or None,
        )


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={env[name]!r} is not a boolean; use 1 or 0")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if value < 0 or value != value or value == float("inf"):
        raise ConfigError(f"{name}={raw!r} must be a finite number of seconds >= 0")
    return value
