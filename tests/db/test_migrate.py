"""Migrations: applied once, in order, each completely or not at all."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, Callable

import psycopg
import pytest

from orchestrate.errors import MigrationError
from orchestrate.db.migrate import MigrationStatus, default_migrations_dir, find_migrations, migrate, status

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
CORE = "20261123000000_core.sql"
ALL = [m.file for m in find_migrations(default_migrations_dir())]  # CORE first


def query(url: str, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def copy_migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), folder)
    return folder


def test_the_repository_migrations_are_found() -> None:
    assert default_migrations_dir() == REPO / "supabase" / "migrations"
    assert [m.file for m in find_migrations(default_migrations_dir())][0] == CORE


def test_migrate_applies_then_does_nothing(make_database: Callable[[], str]) -> None:
    url = make_database()
    assert status(url)[0] == MigrationStatus("20261123000000", "core", False)
    assert not any(s.applied for s in status(url))
    assert migrate(url) == ALL
    assert migrate(url) == []
    assert all(s.applied for s in status(url)) and len(status(url)) == len(ALL)
    # Recorded the way the Supabase CLI records it, so `supabase db push` agrees.
    rows = query(
        url,
        "select version, name, statements[1] like '%create table public.runs%'"
        " from supabase_migrations.schema_migrations order by version limit 1",
    )
    assert rows == [("20261123000000", "core", True)]


def test_a_failing_migration_names_the_file_and_leaves_nothing_behind(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_database()
    folder = copy_migrations(tmp_path)
    (folder / "20990101000000_broken.sql").write_text(
        "create table public.half_done (id int);\n\ninsert into public.nowhere values (1);\n"
    )
    with pytest.raises(MigrationError) as caught:
        migrate(url, folder)
    error = caught.value
    assert error.type == "migration-failed"
    assert error.file == "20990101000000_broken.sql" and error.line == 3
    assert "20990101000000_broken.sql" in str(error)
    assert 'relation "public.nowhere" does not exist' in str(error)
    # The good migration before it stays applied; the broken one left nothing.
    assert query(url, "select to_regclass('public.runs') is not null, to_regclass('public.half_done')") == [(True, None)]
    assert [(s.name, s.applied) for s in status(url, folder)][-1] == ("broken", False)
    assert all(s.applied for s in status(url, folder)[:-1])
    # Fixed, it applies.
    (folder / "20990101000000_broken.sql").write_text("create table public.half_done (id int);\n")
    assert migrate(url, folder) == ["20990101000000_broken.sql"]


def test_concurrent_migrators_apply_each_file_once(make_database: Callable[[], str]) -> None:
    url = make_database()
    results: list[list[str]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        try:
            start.wait()
            results.append(migrate(url))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    # Each file applied exactly once, by whichever migrator got to it first.
    assert len(results) == 4 and sorted(f for r in results for f in r) == sorted(ALL)


def test_misnamed_or_duplicate_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "add_things.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="add_things.sql is not named <timestamp>_<name>.sql"):
        find_migrations(tmp_path)
    (tmp_path / "add_things.sql").unlink()
    (tmp_path / "1_a.sql").write_text("select 1;")
    (tmp_path / "1_b.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="share version 1"):
        find_migrations(tmp_path)


def test_files_apply_in_numeric_version_order(make_database: Callable[[], str], tmp_path: Path) -> None:
    url = make_database()
    folder = copy_migrations(tmp_path)
    (folder / "99999999999999_second.sql").write_text("alter table public.probe add column b int;")
    (folder / "30000000000000_first.sql").write_text("create table public.probe (a int);")
    assert migrate(url, folder) == [*ALL, "30000000000000_first.sql", "99999999999999_second.sql"]


def test_seed_applies_and_its_workflow_is_valid(pg_url: str, pg_server_url: str) -> None:
    seed = (REPO / "supabase" / "seed.sql").read_text()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for _ in range(2):  # re-running the seed changes nothing
            conn.execute(seed.encode())
        rows = conn.execute(
            "select w.source, w.spec, u.email from workflows w join auth.users u on u.id = w.owner_id"
            " where w.id = '00000000-0000-4000-8000-00000000de01'"
        ).fetchall()
    assert len(rows) == 1
    source, spec, email = rows[0]
    assert email == "demo@orchestrate.local"
    from orchestrate.spec import dump_spec, parse_workflow

    assert dump_spec(parse_workflow(source, "seed.sql")) == spec


def test_migrations_run_as_a_non_superuser_owner_like_on_supabase(
    make_database: Callable[[], str], pg_server_url: str, tmp_path: Path
) -> None:
    """On Supabase, `postgres` is not a superuser, owns the database and the
    publication, and older projects grant new tables to anon by default. Reproduce
    that, then migrate as that role: no superuser power needed, no bootstrap run,
    and anon still gets nothing."""
    url = make_database()
    assert migrate(url, tmp_path) == []  # bootstraps only (as the superuser)
    dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    owner = "owner_" + dbname  # roles are cluster-wide: one per test database
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create role {owner} login nosuperuser password 'owner-pw'".encode())
        conn.execute(f"grant anon, authenticated, service_role to {owner}".encode())
        conn.execute(f'alter database "{dbname}" owner to {owner}'.encode())
        conn.execute(f"alter schema public owner to {owner}".encode())
        conn.execute(f"alter schema supabase_migrations owner to {owner}".encode())
        conn.execute(f"alter table supabase_migrations.schema_migrations owner to {owner}".encode())
        conn.execute(f"alter publication supabase_realtime owner to {owner}".encode())
        conn.execute(f"grant usage on schema auth to {owner}".encode())
        conn.execute(f"grant references, select on auth.users to {owner}".encode())
        conn.execute(
            f"alter default privileges for role {owner} in schema public"
            " grant all on tables to anon, authenticated, service_role".encode()
        )
        conn.execute(
            f"alter default privileges for role {owner} in schema public"
            " grant all on functions to anon, authenticated, service_role".encode()
        )
        # Marks Supabase's own auth.role(): the bootstrap must not replace it.
        conn.execute("create or replace function auth.role() returns text language sql stable as $$ select 'supabase' $$")
    as_owner = psycopg.conninfo.make_conninfo(url, user=owner, password="owner-pw")
    try:
        assert migrate(as_owner) == ALL
        assert query(url, "select auth.role()") == [("supabase",)]
        assert query(url, "select tableowner from pg_tables where tablename = 'runs'") == [(owner,)]
        assert query(url, "select has_table_privilege('anon', 'public.runs', 'select')") == [(False,)]
        for role in ("anon", "authenticated"):
            # Supabase's default grant of functions to the API roles does not reach ours.
            executable = f"select p.oid::regprocedure::text from pg_proc p where p.pronamespace in ('orchestrate'::regnamespace, 'public'::regnamespace) and has_function_privilege('{role}', p.oid, 'execute') order by 1"
            # ... only the intent granted on purpose (tests/security covers it).
            assert query(url, executable) == ([("orchestrate.owns_run_topic(text)",), ("orchestrate.redeliver_webhook(uuid)",)] if role == "authenticated" else [])
            assert query(url, f"select has_table_privilege('{role}', 'public.step_runs', 'update')") == [(False,)]
            # Secrets: names may be listed by their owner, a sealed value is never readable.
            assert query(url, f"select has_column_privilege('{role}', 'public.user_secrets', 'value', 'select')") == [(False,)]
            assert query(url, f"select has_column_privilege('{role}', 'public.user_secrets', 'name', 'select')") == [(role == "authenticated",)]
        assert query(url, "select count(*) from pg_publication_tables where pubname = 'supabase_realtime'") == [(3,)]
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'drop database "{dbname}" with (force)'.encode())
            conn.execute(f"drop role {owner}".encode())


def test_the_bootstrap_is_idempotent(make_database: Callable[[], str]) -> None:
    bootstrap = (REPO / "shared" / "orchestrate" / "db" / "bootstrap.sql").read_bytes()
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(2):
            conn.execute(bootstrap)
        row = conn.execute(
            "select rolbypassrls, pg_has_role('authenticator', 'authenticated', 'member')"
            " from pg_roles where rolname = 'service_role'"
        ).fetchone()
    assert row == (True, True)
