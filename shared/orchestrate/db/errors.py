"""Errors of the database layer. Each has a stable ``type`` slug (problem+json) and a
message that names the thing at fault and what to do about it."""

from __future__ import annotations

from ..errors import OrchestrateError


class DatabaseError(OrchestrateError):
    """Base of the errors raised by ``orchestrate.db``."""

    type = "database-error"


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached, or its URL is not a PostgreSQL URL."""

    type = "database-unavailable"


class EmbeddedPostgresError(DatabaseUnavailable):
    """The embedded PostgreSQL server could not be started."""

    type = "embedded-postgres-failed"


class MigrationError(DatabaseError):
    """A migration file could not be applied; the database is left as it was."""

    type = "migration-failed"

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file = file  # the migration's file name, when one is at fault
        self.line = line  # 1-based line in that file, when the server told us where
