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
    # Supabase Auth: the legacy HS256 secret and/or the project URL (for its JWKS)
    supabase_url: str | None = None
    supabase_jwt_secret: str | None = None
    # Public: clients subscribe to Realtime with it (never a secret key)
    supabase_publishable_key: str | None = None
    # Stored exports: a Supabase Storage bucket through its S3-compatible endpoint
    storage_s3_endpoint: str | None = None
    storage_bucket: str | None = None
    storage_access_key_id: str | None = None
    storage_secret_access_key: str | None = None
    storage_region: str | None = None
    storage_url_ttl: int = 3600  # seconds a download URL stays valid
    # Queues (SQS URLs); no URL means the in-process queue
    step_queue_url: str | None = None
    webhook_queue_url: str | None = None
    sqs_endpoint_url: str | None = None  # a local SQS (moto) instead of AWS
    aws_region: str = "us-east-1"
    # Webhooks: allow private/loopback targets (local development only)
    webhook_allow_private: bool = False
    # Fairness: steps of one run in flight at once; the rest stays queued in the database
    run_max_in_flight: int = 50
    # `workflow` steps: how deep child runs may nest (a cycle of workflows stops here)
    max_workflow_depth: int = 5
    # Clients of a running service (orchestrate submit / watch)
    api_url: str = "http://127.0.0.1:8000"
    api_token: str | None = None

    @property
    def stores_exports(self) -> bool:
        """True when a Storage bucket and its S3 keys are configured."""
        return bool(self.storage_s3_endpoint and self.storage_bucket and self.storage_access_key_id and self.storage_secret_access_key)

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
            supabase_url=(env.get("SUPABASE_URL") or "").rstrip("/") or None,
            supabase_jwt_secret=env.get("SUPABASE_JWT_SECRET") or None,
            supabase_publishable_key=env.get("SUPABASE_PUBLISHABLE_KEY") or env.get("SUPABASE_ANON_KEY") or None,
            storage_s3_endpoint=(env.get("ORCHESTRATE_STORAGE_S3_ENDPOINT") or "").rstrip("/") or None,
            storage_bucket=env.get("ORCHESTRATE_STORAGE_BUCKET") or None,
            storage_access_key_id=env.get("ORCHESTRATE_STORAGE_ACCESS_KEY_ID") or None,
            storage_secret_access_key=env.get("ORCHESTRATE_STORAGE_SECRET_ACCESS_KEY") or None,
            storage_region=env.get("ORCHESTRATE_STORAGE_REGION") or None,
            storage_url_ttl=min(max(int(_seconds(env, "ORCHESTRATE_STORAGE_URL_TTL", 3600)), 60), 7 * 24 * 3600),  # S3 allows 7 days
            step_queue_url=env.get("ORCHESTRATE_STEP_QUEUE_URL") or None,
            webhook_queue_url=env.get("ORCHESTRATE_WEBHOOK_QUEUE_URL") or None,
            sqs_endpoint_url=env.get("AWS_ENDPOINT_URL_SQS") or env.get("AWS_ENDPOINT_URL") or None,
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            webhook_allow_private=_flag(env, "ORCHESTRATE_WEBHOOK_ALLOW_PRIVATE"),
            run_max_in_flight=_count(env, "ORCHESTRATE_RUN_MAX_IN_FLIGHT", 50),
            max_workflow_depth=_count(env, "ORCHESTRATE_MAX_WORKFLOW_DEPTH", 5, most=100),
            api_url=(env.get("ORCHESTRATE_API_URL") or "http://127.0.0.1:8000").rstrip("/"),
            api_token=env.get("ORCHESTRATE_TOKEN") or None,
        )


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={env[name]!r} is not a boolean; use 1 or 0")


def _count(env: Mapping[str, str], name: str, default: int, *, most: int = 10_000) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise ConfigError(f"{name}={raw!r} must be a whole number from 1 to {most}")
    return int(raw)


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
