"""Opening connections with a bounded wait and an error a person can act on."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from ..errors import DatabaseUnavailable

CONNECT_TIMEOUT = 5  # seconds; libpq's minimum is 2


def redact(conninfo: str) -> str:
    """``conninfo`` with any password replaced by ``***``, fit for messages and logs."""
    redacted = re.sub(r"(://[^:/?#@]*:)[^@/?#]*@", r"\1***@", conninfo)
    redacted = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", redacted)
    return redacted


def connect(
    conninfo: str,
    *,
    label: str = "the database",
    timeout: float = CONNECT_TIMEOUT,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """Connect within ``timeout`` seconds or raise ``DatabaseUnavailable`` naming
    ``label`` (e.g. "DATABASE_URL"). Server-side prepared statements are off
    (``prepare_threshold=None``) so Supabase's transaction pooler works too."""
    kwargs.setdefault("prepare_threshold", None)
    try:
        return psycopg.connect(conninfo, connect_timeout=max(2, round(timeout)), **kwargs)
    except psycopg.ProgrammingError as exc:  # raised for a malformed conninfo
        raise DatabaseUnavailable(
            f"{label} is not a valid PostgreSQL URL ({redact(conninfo)}): {_first_line(exc)}; "
            "expected postgresql://user:password@host:port/database"
        ) from None
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to {label} ({redact(conninfo)}): {_first_line(exc)}"
        ) from None


def connection_lost(exc: BaseException) -> str | None:
    """A one-line reason if ``exc`` is the database being unreachable (a lost or refused
    connection, an exhausted pool): a condition to log in one line and retry, not a bug.
    None for anything else."""
    from psycopg_pool import PoolTimeout

    if isinstance(exc, DatabaseUnavailable):
        return exc.message
    if isinstance(exc, (psycopg.OperationalError, PoolTimeout)):
        return f"database unavailable ({type(exc).__name__}: {_first_line(exc)})"
    return None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else type(exc).__name__
