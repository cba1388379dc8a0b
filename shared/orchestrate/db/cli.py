"""``orchestrate db``: apply migrations and show their status.

Mounted by the main CLI (``app.add_typer(db_app, name="db")``). The database is
``--database-url``, else ``DATABASE_URL`` (environment or ``./.env``), else the
embedded PostgreSQL in the per-user data folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import OrchestrateError

db_app = typer.Typer(
    name="db",
    help="Manage the database: apply migrations, show their status.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)
EXIT_ERROR = 2

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL. Default: $DATABASE_URL, else the embedded PostgreSQL.",
        show_default=False,
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder of the embedded PostgreSQL.", show_default=False),
]
MigrationsDir = Annotated[
    Path | None,
    typer.Option("--migrations-dir", help="Folder of <timestamp>_<name>.sql files.", show_default=False),
]


def _die(message: str) -> NoReturn:
    _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(EXIT_ERROR)


@contextmanager
def _guard() -> Iterator[None]:
    """One clear line and exit code 2 for anything that goes wrong; no traceback."""
    import psycopg

    try:
        yield
    except OrchestrateError as exc:
        _die(exc.message)
    except psycopg.Error as exc:
        _die(f"database error: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
    except KeyboardInterrupt:
        _die("interrupted")


def _database_url(option: str | None) -> str | None:
    if option:
        return option
    from ..settings import Settings

    return Settings.from_env().database_url  # the environment, then ./.env


@db_app.command("migrate")
def migrate_command(
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    migrations_dir: MigrationsDir = None,
) -> None:
    """Apply the migrations not yet applied, each in its own transaction."""
    from .embedded import resolve_database_url
    from .migrate import default_migrations_dir, migrate

    with _guard():
        folder = migrations_dir or default_migrations_dir()
        with resolve_database_url(_database_url(database_url), data_dir) as target:
            applied = migrate(target.conninfo, folder)
        where = escape(target.description)
        if not applied:
            _out.print(f"[green]✓[/] {where} is up to date", highlight=False)
            return
        for name in applied:
            _out.print(f"[green]applied[/] {escape(name)}", highlight=False)
        n = len(applied)
        _out.print(f"[green]✓[/] {n} migration{'s' if n != 1 else ''} applied to {where}", highlight=False)


@db_app.command("status")
def status_command(
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    migrations_dir: MigrationsDir = None,
) -> None:
    """List the migrations and whether each is applied."""
    from .embedded import resolve_database_url
    from .migrate import default_migrations_dir, status

    with _guard():
        folder = migrations_dir or default_migrations_dir()
        with resolve_database_url(_database_url(database_url), data_dir) as target:
            rows = status(target.conninfo, folder)
        table = Table(title=escape(target.description), title_justify="left")
        table.add_column("Version")
        table.add_column("Name")
        table.add_column("Applied")
        for row in rows:
            table.add_row(row.version, escape(row.name), "[green]yes[/]" if row.applied else "[yellow]pending[/]")
        _out.print(table)
        pending = sum(not row.applied for row in rows)
        if pending:
            _out.print(f"{pending} pending: run `orchestrate db migrate`", highlight=False)
