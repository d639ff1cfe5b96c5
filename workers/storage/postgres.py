"""Connections to PostgreSQL, and the line between the database being down and a row being refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from workers.errors import DependencyUnavailable

# Errors that say the server is unreachable, restarting or overloaded: retry later, never reject.
UNAVAILABLE = (psycopg.OperationalError, psycopg.errors.AdminShutdown, PoolTimeout)
# Errors that say this data cannot be stored: the event goes to the dead-letter topic.
# ProgramLimitExceeded (a value too large for an index, say) is an OperationalError to psycopg, but
# retrying the same row would fail forever: it is the row's fault.
REFUSED = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded)

# A database host that vanishes sends no FIN: without these, a statement waiting for its reply
# would wait forever instead of failing and being retried. The DSN may set its own.
LIVENESS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


def open_pool(
    dsn: str,
    *,
    schema: str | None = None,
    max_size: int = 4,
    timeout: float = 10.0,
    autocommit: bool = False,
) -> ConnectionPool:
    """A small pool; `schema` sets the search path (tests give each its own schema).

    `timeout` is how long to wait for a connection before PoolTimeout. With `autocommit`, a lone
    statement is its own transaction and costs one round trip; `transaction()` still opens one.
    """
    given = conninfo_to_dict(dsn)
    kwargs: dict[str, Any] = {name: value for name, value in LIVENESS.items() if name not in given}
    kwargs["autocommit"] = autocommit
    if schema:
        kwargs["options"] = f"-c search_path={schema}"
    # Not waiting for the first connection: a database that is down at start is retried like any other.
    return ConnectionPool(
        dsn, min_size=1, max_size=max_size, kwargs=kwargs, open=True, timeout=timeout, name="hitl"
    )


@contextmanager
def connection(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """A connection from the pool; an unreachable database becomes DependencyUnavailable."""
    try:
        with pool.connection() as pooled:
            yield pooled
    except REFUSED:
        raise
    except UNAVAILABLE as error:
        raise DependencyUnavailable(f"PostgreSQL unavailable: {error}") from error


@contextmanager
def transaction(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """A connection in a transaction; an unreachable database becomes DependencyUnavailable."""
    with connection(pool) as pooled, pooled.transaction():
        yield pooled


def refusal_message(error: psycopg.Error) -> str:
    """The database's own words; psycopg refuses some values (a NUL in text) before sending them."""
    diag = error.diag
    if diag.sqlstate is None:
        return f"refused by psycopg for PostgreSQL: {error}"
    message = f"refused by PostgreSQL ({diag.sqlstate}): {diag.message_primary}"
    return f"{message}; {diag.message_detail}" if diag.message_detail else message
