"""Apply ``supabase/migrations/<version>_<name>.sql`` to a PostgreSQL database.

Bookkeeping uses the Supabase CLI's own table, ``supabase_migrations.schema_migrations``
(version, name, statements), so ``supabase db push`` and ``orchestrate db migrate``
agree on what is applied. On a plain PostgreSQL (the embedded server, a test database)
the Supabase pieces the migrations rely on are first created by ``bootstrap.sql``.

Each migration runs in its own transaction together with its bookkeeping row: it is
applied completely and recorded, or not at all. Every transaction takes the same
transaction-level advisory lock, so concurrent migrators apply each file once (and it
works through a transaction pooler, unlike a session lock)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

from .connect import connect
from ..errors import MigrationError

_FILE_NAME = re.compile(r"^([0-9]+)_(.*)\.sql$")  # the Supabase CLI's pattern
_LOCK_KEY = 0x6F72636865737472  # "orchestr": one advisory lock for every migrator
_BOOTSTRAP = Path(__file__).with_name("bootstrap.sql")

_CREATE_TABLE = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (version text not null primary key);
alter table supabase_migrations.schema_migrations add column if not exists statements text[];
alter table supabase_migrations.schema_migrations add column if not exists name text;
alter table supabase_migrations.schema_migrations
  add column if not exists applied_at timestamptz default now();
"""

# True when every Supabase piece the migrations use is present.
_HAS_SUPABASE = """
select to_regrole('anon') is not null
   and to_regrole('authenticated') is not null
   and to_regrole('service_role') is not null
   and to_regclass('auth.users') is not null
   and to_regprocedure('auth.uid()') is not null
   and exists (select 1 from pg_publication where pubname = 'supabase_realtime')
"""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def file(self) -> str:
        return self.path.name


class MigrationStatus(NamedTuple):
    version: str
    name: str
    applied: bool


def default_migrations_dir() -> Path:
    """The repository's ``supabase/migrations`` (found from this file: an editable
    install or a checkout), else ``orchestrate/db/migrations`` if a build shipped it."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[2] / "supabase" / "migrations", here / "migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError(
        "cannot find the migrations folder (supabase/migrations); "
        "pass the folder explicitly (--migrations-dir)"
    )


def find_migrations(directory: Path) -> list[Migration]:
    """The migration files of ``directory`` in the order they apply."""
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {directory} does not exist")
    found: dict[str, Migration] = {}
    for path in directory.glob("*.sql"):
        match = _FILE_NAME.match(path.name)
        if not match:
            # The Supabase CLI skips such a file; silently not applying it is worse.
            raise MigrationError(
                f"migration file {path.name} is not named <timestamp>_<name>.sql; rename it",
                file=path.name,
            )
        version, name = match.groups()
        if version in found:
            raise MigrationError(
                f"migrations {found[version].file} and {path.name} share version {version}; "
                "give one a new timestamp",
                file=path.name,
            )
        found[version] = Migration(version, name, path)
    return sorted(found.values(), key=lambda m: (int(m.version), m.file))


def migrate(conninfo: str, migrations_dir: Path | None = None) -> list[str]:
    """Apply the pending migrations; return the file names applied, in order.
    Raises ``MigrationError`` (naming the file and the server's message) when one
    fails; that migration is rolled back and those before it stay applied."""
    migrations = find_migrations(migrations_dir or default_migrations_dir())
    applied: list[str] = []
    with connect(conninfo, autocommit=True) as conn:
        _prepare(conn)
        done = _applied_versions(conn)
        for migration in migrations:
            if migration.version not in done and _apply(conn, migration):
                applied.append(migration.file)
    return applied


def status(conninfo: str, migrations_dir: Path | None = None) -> list[MigrationStatus]:
    """Every migration known to the folder or the database, oldest first, with
    whether it is applied. Changes nothing."""
    migrations = find_migrations(migrations_dir or default_migrations_dir())
    with connect(conninfo, autocommit=True) as conn:
        recorded = _recorded(conn)
    rows = {m.version: MigrationStatus(m.version, m.name, m.version in recorded) for m in migrations}
    for version, name in recorded.items():  # applied elsewhere, missing from the folder
        rows.setdefault(version, MigrationStatus(version, name or "", True))
    return sorted(rows.values(), key=lambda r: (int(r.version) if r.version.isdigit() else 0, r.version))


def _prepare(conn: psycopg.Connection[Any]) -> None:
    """Bootstrap a plain PostgreSQL if needed, and create the bookkeeping table."""
    file, sql = "supabase_migrations.schema_migrations", ""
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            row = conn.execute(_HAS_SUPABASE).fetchone()
            if not (row and row[0]):
                file, sql = _BOOTSTRAP.name, _BOOTSTRAP.read_text(encoding="utf-8")
                conn.execute(sql.encode())
                file, sql = "supabase_migrations.schema_migrations", ""
            conn.execute(_CREATE_TABLE.encode())
    except psycopg.Error as exc:
        raise _failure(file, sql, exc) from exc


def _apply(conn: psycopg.Connection[Any], migration: Migration) -> bool:
    """Apply one migration in one transaction; False if another migrator did it first."""
    sql = migration.path.read_text(encoding="utf-8")
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            if conn.execute(
                "select 1 from supabase_migrations.schema_migrations where version = %s",
                (migration.version,),
            ).fetchone():
                return False
            # Without parameters psycopg sends the file as one simple query: it may hold
            # many statements, and a "%" in it is never taken for a placeholder.
            conn.execute(sql.encode())
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)"
                " values (%s, %s, %s)",
                (migration.version, migration.name, [sql]),
            )
    except psycopg.Error as exc:
        raise _failure(migration.file, sql, exc) from exc
    return True


def _applied_versions(conn: psycopg.Connection[Any]) -> set[str]:
    return set(_recorded(conn))


def _recorded(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
    if not _has_table(conn):
        return {}
    rows = conn.execute("select version, name from supabase_migrations.schema_migrations").fetchall()
    return {version: name for version, name in rows}


def _has_table(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select to_regclass('supabase_migrations.schema_migrations') is not null").fetchone()
    return bool(row and row[0])


def _failure(file: str, sql: str, exc: psycopg.Error) -> MigrationError:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip() or type(exc).__name__
    line = None
    if diag.statement_position and sql:
        # The position counts characters from the start of the file we sent.
        line = sql.count("\n", 0, int(diag.statement_position) - 1) + 1
    where = f" at line {line}" if line else ""
    extra = "".join(f"; {part}" for part in (diag.message_detail, diag.message_hint) if part)
    return MigrationError(
        f"migration {file} failed{where}: {message}{extra} (rolled back: none of it was applied)",
        file=file,
        line=line,
    )
