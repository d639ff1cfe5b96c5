"""Connections to PostgreSQL, and the line between the database being down and a row being refused."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from workers.config import PostgresSettings
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.logs import log
from workers.reasons import Reason
from workers.storage.migrations import migrate

logger = logging.getLogger("hitl.storage")
T = TypeVar("T")

# The line between dependency trouble and a row's own fault, drawn once, by SQLSTATE (Appendix A of
# PostgreSQL's manual). Retry: the connection (08), a transaction rolled back for a conflict (40:
# serialization failure, deadlock), resources (53), operator intervention (57: shutdown, a query
# cancelled by statement_timeout), system errors (58), a read-only standby, a session killed for
# idling in a transaction, and a lock not granted within lock_timeout or an object in use.
UNAVAILABLE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
UNAVAILABLE_STATES = frozenset({"25006", "25P03", "55P03", "55006"})
# Refuse: data (22) and integrity (23) errors, and program limits (54: a value too large for an
# index, say), which is an OperationalError to psycopg, but retrying the same row would fail forever.
REFUSED_CLASSES = frozenset({"22", "23", "54"})
# The same refusals as exception classes, for `except` clauses (psycopg maps classes 22 and 23
# onto these; also raised by psycopg itself, without a SQLSTATE, for a NUL in text, say).
REFUSED = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded)


def is_refused(error: BaseException) -> bool:
    """The row is at fault: it goes to the dead-letter topic."""
    if not isinstance(error, psycopg.Error):
        return False
    if error.sqlstate is None:
        return isinstance(error, REFUSED)
    return error.sqlstate[:2] in REFUSED_CLASSES


def is_unavailable(error: BaseException) -> bool:
    """The database is unreachable, restarting, overloaded, read-only or timing out: retry later."""
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, psycopg.Error):
        return False
    if error.sqlstate is None:
        # Raised by psycopg itself: a connection lost or closed, with no word from the server.
        return isinstance(error, psycopg.OperationalError)
    return error.sqlstate[:2] in UNAVAILABLE_CLASSES or error.sqlstate in UNAVAILABLE_STATES


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
    limits: PostgresSettings | None = None,
) -> ConnectionPool:
    """A small pool; `schema` sets the search path (tests give each its own schema).

    `timeout` is how long to wait for a connection before PoolTimeout. With `autocommit`, a lone
    statement is its own transaction and costs one round trip; `transaction()` still opens one.
    Every session gets `limits` (statement_timeout and lock_timeout; the defaults if not given),
    added to the DSN's own `options`, which are kept.
    """
    given = conninfo_to_dict(dsn)
    kwargs: dict[str, Any] = {name: value for name, value in LIVENESS.items() if name not in given}
    kwargs["autocommit"] = autocommit
    kwargs["options"] = session_options(str(given.get("options") or ""), limits or PostgresSettings(), schema)
    # Not waiting for the first connection: a database that is down at start is retried like any other.
    return ConnectionPool(
        dsn, min_size=1, max_size=max_size, kwargs=kwargs, open=True, timeout=timeout, name="hitl"
    )


def session_options(given: str, limits: PostgresSettings, schema: str | None) -> str:
    """The DSN's `options` followed by ours, which PostgreSQL applies last, so they win."""
    settings = {
        "statement_timeout": _milliseconds(limits.statement_timeout_seconds),
        "lock_timeout": _milliseconds(limits.lock_timeout_seconds),
    }
    if schema:
        settings["search_path"] = schema
    ours = " ".join(f"-c {name}={value}" for name, value in settings.items())
    return f"{given} {ours}".strip()


def _milliseconds(seconds: float) -> str:
    # Never 0, which would switch the timeout off.
    return str(max(1, round(seconds * 1000)))


@contextmanager
def connection(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """A connection from the pool; dependency trouble (`is_unavailable`) becomes DependencyUnavailable.

    Refusals, and errors neither side can claim (a bug: a syntax error, a missing table), are raised
    as they are.
    """
    try:
        with pool.connection() as pooled:
            yield pooled
    except (psycopg.Error, PoolTimeout) as error:
        if is_unavailable(error):
            raise DependencyUnavailable(f"PostgreSQL unavailable: {_describe(error)}") from error
        raise


def _describe(error: BaseException) -> str:
    sqlstate = getattr(error, "sqlstate", None)
    return f"{type(error).__name__} ({sqlstate}): {error}" if sqlstate else f"{type(error).__name__}: {error}"


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


REFUSED_REASON = Reason.DATABASE_REFUSED


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
