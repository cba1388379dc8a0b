"""PostgreSQL support: migrations, the embedded server, the Postgres store.

Submodules import psycopg; this package itself imports nothing, so importing
``orchestrate.db`` stays cheap."""
