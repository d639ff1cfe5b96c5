"""Versioned SQL migrations, applied in order at start, each once, recorded in `schema_migrations`.

Migrations are the `NNNN_name.sql` files beside this module. They run in the connection's search
path, under an advisory lock so that several workers starting together apply each exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(str(resources.files("workers.storage") / "migrations"))
LOCK_KEY = 0x68_69_74_6C  # "hitl"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version, _, name = path.stem.partition("_")
        migrations.append(Migration(version, name, path.read_text()))
    return migrations


def migrate(connection: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Applies every migration not yet applied; returns the versions it applied."""
    applied_now: list[str] = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in connection.execute("SELECT version FROM schema_migrations")}
        for migration in available_migrations(directory):
            if migration.version in done:
                continue
            connection.execute(migration.sql.encode())
            connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied_now.append(migration.version)
    return applied_now
