"""Connections to PostgreSQL, and the line between the database being down and a row being refused."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from workers.errors import DependencyUnavailable, RejectedEvent
from workers.logs import log
from workers.storage.migrations import migrate

logger = logging.getLogger("hitl.storage")
T = TypeVar("T")

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


REFUSED_REASON = "database_refused"


def write_each(
    conn: psycopg.Connection[Any], items: Sequence[T], write_one: Callable[[psycopg.Connection[Any], T], None]
) -> dict[int, RejectedEvent]:
    """Writes item by item, each under a savepoint, in one transaction: the items PostgreSQL
    refuses are returned by index with its message, and the others are stored.

    Sinks fall back to this when a batch write is refused, to find the culprits.
    """
    refused: dict[int, RejectedEvent] = {}
    with conn.transaction():
        for index, item in enumerate(items):
            try:
                with conn.transaction():
                    write_one(conn, item)
            except REFUSED as error:
                refused[index] = RejectedEvent(REFUSED_REASON, refusal_message(error))
    return refused


class MigratedOnce:
    """Applies the migrations through a pool at once, or, if the database is down then, before the
    first write that reaches it; never twice."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._done = False
        try:
            self.ensure()
        except DependencyUnavailable as error:
            log(logger, "migrations_deferred", logging.WARNING, error=str(error)[:500])

    def ensure(self) -> None:
        if self._done:
            return
        with transaction(self._pool) as conn:
            applied = migrate(conn)
        self._done = True
        if applied:
            log(logger, "migrations_applied", versions=applied)
