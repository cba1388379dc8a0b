"""One exception hierarchy. Each error has a stable ``type`` slug (used as the
problem+json ``type`` by the API) and a message that names the thing and the fix."""

from __future__ import annotations

from dataclasses import dataclass


class OrchestrateError(Exception):
    """Base of every error Orchestrate raises on purpose."""

    type: str = "orchestrate-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(OrchestrateError):
    """A setting is missing or wrong (environment, .env, command-line flag)."""

    type = "config-error"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow file, located as precisely as we can."""

    path: str  # field path such as "steps[2].prompt"; "" for the whole document
    message: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def format(self, file: str | None = None) -> str:
        where = [file or "<workflow>"]
        if self.line is not None:
            where.append(str(self.line))
            if self.column is not None:
                where.append(str(self.column))
        field = f" {self.path}:" if self.path else ""
        return f"{':'.join(where)}:{field} {self.message}"


class SpecError(OrchestrateError):
    """A workflow is invalid. Carries every problem found, not just the first."""

    type = "invalid-workflow"

    def __init__(self, problems: list[Problem], file: str | None = None) -> None:
        self.problems = problems
        self.file = file
        super().__init__("\n".join(p.format(file) for p in problems))


class InputError(OrchestrateError):
    """Run inputs are missing or of the wrong type."""

    type = "invalid-inputs"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class AnswerError(OrchestrateError):
    """An approval's answer does not match its declared fields (each problem names one)."""

    type = "invalid-answer"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class TemplateError(OrchestrateError):
    """A prompt or condition could not be rendered at run time."""

    type = "template-error"


class ProviderError(OrchestrateError):
    """The model provider failed. ``retryable`` says whether trying again may help."""

    type = "provider-error"
    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    type = "provider-auth"


class ProviderRejected(ProviderError):
    """The provider refused the request itself (400, 404, 422): retrying cannot help."""

    type = "provider-rejected"


class ProviderTransient(ProviderError):
    """429, 5xx, connection errors and timeouts: worth another try."""

    type = "provider-unavailable"
    retryable = True


class StepTimeout(ProviderError):
    type = "step-timeout"
    retryable = True


class NotFound(OrchestrateError):
    type = "not-found"


class ConflictError(OrchestrateError):
    """The request conflicts with the resource's state (e.g. resuming a finished run)."""

    type = "conflict"


class DatabaseError(OrchestrateError):
    """Base of the errors of the database layer (``orchestrate.db``)."""

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
