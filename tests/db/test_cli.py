"""`orchestrate db migrate|status`: a table on success, one clear line on failure."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

from orchestrate.cli.db import db_app

pytestmark = pytest.mark.postgres

BAD_URL = "postgresql://x:hunter2@127.0.0.1:1/db"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray ./.env
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return CliRunner()


@pytest.mark.parametrize("command", ["migrate", "status"])
def test_an_unreachable_database_is_one_clear_line(runner: CliRunner, command: str) -> None:
    result = runner.invoke(db_app, [command, "--database-url", BAD_URL])
    assert result.exit_code == 2
    assert "DATABASE_URL" in result.output and "Traceback" not in result.output
    assert "hunter2" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_database_url_comes_from_the_environment_and_dotenv(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(db_app, ["status"], env={"DATABASE_URL": BAD_URL})
    assert result.exit_code == 2 and "DATABASE_URL" in result.output
    (tmp_path / ".env").write_text(f"DATABASE_URL={BAD_URL}\n")
    result = runner.invoke(db_app, ["status"])
    assert result.exit_code == 2 and "127.0.0.1" in result.output


def test_migrate_then_status(runner: CliRunner, make_database: Callable[[], str]) -> None:
    url = make_database()
    result = runner.invoke(db_app, ["status", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "20261123000000" in result.output and "pending" in result.output

    result = runner.invoke(db_app, ["migrate", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "applied 20261123000000_core.sql" in result.output

    result = runner.invoke(db_app, ["migrate", "--database-url", url])
    assert result.exit_code == 0 and "up to date" in result.output

    result = runner.invoke(db_app, ["status", "--database-url", url])
    assert result.exit_code == 0 and "yes" in result.output and "pending" not in result.output


def test_a_failing_migration_is_one_clear_line(
    runner: CliRunner, make_database: Callable[[], str], tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20990101000000_broken.sql").write_text("select * from nowhere;\n")
    result = runner.invoke(db_app, ["migrate", "--database-url", make_database(), "--migrations-dir", str(folder)])
    assert result.exit_code == 2
    assert "20990101000000_broken.sql" in result.output and "nowhere" in result.output
    assert "Traceback" not in result.output


def test_without_a_url_the_embedded_server_is_used(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(db_app, ["migrate", "--data-dir", str(tmp_path / "pg")])
    assert result.exit_code == 0, result.output
    assert "embedded PostgreSQL" in result.output and "20261123000000_core.sql" in result.output
    assert not (tmp_path / "pg" / "postmaster.pid").exists()  # stopped again afterwards
