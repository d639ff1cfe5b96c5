"""Connections to PostgreSQL, and the line between the database being down and a row being refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from workers.errors import DependencyUnavailable

# Errors that say the server is unreachable, restarting or overloaded: retry later, never reject.
UNAVAILABLE = (psycopg.OperationalError, psycopg.errors.AdminShutdown, PoolTimeout)
# Errors that say this data cannot be stored: the event goes to the dead-letter topic.
REFUSED = (psycopg.errors.IntegrityError, psycopg.errors.DataError)


def open_pool(dsn: str, *, schema: str | None = None, max_size: int = 4) -> ConnectionPool:
    """A small pool; `schema` sets the search path (tests give each its own schema)."""
    kwargs = {"options": f"-c search_path={schema}"} if schema else {}
    # Not waiting for the first connection: a database that is down at start is retried like any other.
    return ConnectionPool(
        dsn, min_size=1, max_size=max_size, kwargs=kwargs, open=True, timeout=10, name="hitl"
    )


@contextmanager
def transaction(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """A connection in a transaction; an unreachable database becomes DependencyUnavailable."""
    try:
        with pool.connection() as connection, connection.transaction():
            yield connection
    except UNAVAILABLE as error:
        raise DependencyUnavailable(f"PostgreSQL unavailable: {error}") from error
