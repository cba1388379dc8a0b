"""``orchestrate db``: apply migrations and show their status.

The database is
``--database-url``, else ``DATABASE_URL`` (environment or ``./.env``), else the
embedded PostgreSQL in the per-user data folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .app import guard, out

if TYPE_CHECKING:
    from ..db.embedded import ServerStatus

db_app = typer.Typer(
    name="db",
    help="Manage the database: apply migrations, show their status.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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
    from ..db.embedded import resolve_database_url
    from ..db.migrate import default_migrations_dir, migrate

    with guard():
        folder = migrations_dir or default_migrations_dir()
        with resolve_database_url(_database_url(database_url), data_dir) as target:
            applied = migrate(target.conninfo, folder)
        where = escape(target.description)
        if not applied:
            out.print(f"[green]✓[/] {where} is up to date", highlight=False)
            return
        for name in applied:
            out.print(f"[green]applied[/] {escape(name)}", highlight=False)
        n = len(applied)
        out.print(f"[green]✓[/] {n} migration{'s' if n != 1 else ''} applied to {where}", highlight=False)


@db_app.command("status")
def status_command(
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    migrations_dir: MigrationsDir = None,
) -> None:
    """Say which server runs (embedded: pid, port, data folder, who uses it), then list
    the migrations and whether each is applied."""
    from ..db.embedded import resolve_database_url, server_status
    from ..db.migrate import default_migrations_dir, status

    with guard():
        folder = migrations_dir or default_migrations_dir()
        url = _database_url(database_url)
        if not url:  # before connecting: this command starts a server that is not running
            out.print(_describe(server_status(data_dir)), highlight=False)
        with resolve_database_url(url, data_dir) as target:
            rows = status(target.conninfo, folder)
        table = Table(title=escape(target.description), title_justify="left")
        table.add_column("Version")
        table.add_column("Name")
        table.add_column("Applied")
        for row in rows:
            table.add_row(row.version, escape(row.name), "[green]yes[/]" if row.applied else "[yellow]pending[/]")
        out.print(table)
        pending = sum(not row.applied for row in rows)
        if pending:
            out.print(f"{pending} pending: run `orchestrate db migrate`", highlight=False)


def _describe(server: ServerStatus) -> str:
    where = f"embedded PostgreSQL in {escape(str(server.data_dir))}"
    if not server.running:
        return f"{where}: not running (started for this command, stopped after it)"
    socket = f" (socket in {escape(str(server.socket_dir))})" if server.socket_dir else ""
    line = f"{where}: running, pid {server.pid}, port {server.port}{socket}"
    if server.orphaned:
        return f"{line}\n  used by no process: the one that started it ended without stopping it; adopted now, stopped after this command"
    users = ", ".join(f"pid {p} ({_command(p)}, {'adopted' if p == server.adopted_by else 'owner'})" for p in server.users)
    return f"{line}\n  used by {users}"


def _command(pid: int) -> str:
    """"orchestrate serve" for our own processes, else the program's name."""
    import psutil  # type: ignore[import-untyped,unused-ignore]

    try:
        args = psutil.Process(pid).cmdline()
    except psutil.Error:
        return "?"
    names = [Path(a).name for a in args]
    if "orchestrate" in names and names.index("orchestrate") + 1 < len(names):
        return escape("orchestrate " + names[names.index("orchestrate") + 1])
    return escape(names[0]) if names else "?"
