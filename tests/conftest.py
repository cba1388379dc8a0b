"""Shared fixtures. Postgres fixtures live in tests/postgres_fixtures.py."""

pytest_plugins = ["tests.postgres_fixtures", "tests.aws_fixtures", "tests.realtime_fixtures"]
