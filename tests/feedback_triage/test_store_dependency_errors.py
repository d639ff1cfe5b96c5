"""Dependency trouble from a PostgreSQL that answers: a read-only standby, a session killed for idling
in a transaction, a lock held too long, a statement too slow. Each is DependencyUnavailable (the
batch is retried), never a crash and never a refusal; and no session waits forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.feedback_triage.conftest import StoreFactory, stored_event_ids
from tests.feedback_triage.events import feedback
from tests.feedback_triage.test_store import received
from workers.config import PostgresSettings, load_settings
from workers.errors import DependencyUnavailable
from workers.feedback_triage.store import FeedbackStore
from workers.storage.postgres import is_refused, is_unavailable, open_pool, transaction


@pytest.fixture
def closing() -> Iterator[list[FeedbackStore]]:
    stores: list[FeedbackStore] = []
    yield stores
    for store in stores:
        store.close()


def test_a_read_only_database_is_unavailable_not_a_crash(
    make_store: StoreFactory,
    postgres_dsn: str,
    pg_schema: str,
    pg_connection: psycopg.Connection,
    closing: list[FeedbackStore],
) -> None:
    make_store()  # the table exists, as on a primary that has become a standby
    read_only_dsn = make_conninfo(postgres_dsn, options="-c default_transaction_read_only=on")
    # Its migrations are deferred, not raised out of the constructor.
    closing.append(FeedbackStore(read_only_dsn, schema=pg_schema, pool_timeout=2.0))
    store = closing[-1]
    event = feedback()

    with pytest.raises(DependencyUnavailable) as raised:
        store.write(received([event]))
    assert isinstance(raised.value.__cause__, psycopg.errors.ReadOnlySqlTransaction)
    assert stored_event_ids(pg_connection) == []
    # The same batch, retried once the database is writable again, is stored.
    assert make_store().write(received([event])) == {}
    assert stored_event_ids(pg_connection) == [str(event.event_id)]


def test_a_session_killed_for_idling_in_a_transaction_is_unavailable(postgres_dsn: str) -> None:
    dsn = make_conninfo(postgres_dsn, options="-c idle_in_transaction_session_timeout=200")
    with open_pool(dsn, timeout=2.0) as pool:
        with pytest.raises(DependencyUnavailable) as raised, transaction(pool) as conn:
            conn.execute("SELECT 1")
            time.sleep(0.8)
            conn.execute("SELECT 1")
        assert isinstance(raised.value.__cause__, psycopg.errors.IdleInTransactionSessionTimeout)
        # The pool replaces the dead session: the next transaction works.
        with transaction(pool) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize(
    ("limits", "cause"),
    [
        pytest.param(
            PostgresSettings(lock_timeout_seconds=0.3, statement_timeout_seconds=30),
            psycopg.errors.LockNotAvailable,
            id="lock_timeout",
        ),
        pytest.param(
            PostgresSettings(lock_timeout_seconds=30, statement_timeout_seconds=0.3),
            psycopg.errors.QueryCanceled,
            id="statement_timeout",
        ),
    ],
)
def test_a_lock_held_too_long_is_retried_until_released(
    postgres_dsn: str,
    pg_schema: str,
    pg_connection: psycopg.Connection,
    closing: list[FeedbackStore],
    limits: PostgresSettings,
    cause: type[BaseException],
) -> None:
    closing.append(FeedbackStore(postgres_dsn, schema=pg_schema, pool_timeout=2.0, limits=limits))
    store = closing[-1]
    events = [feedback() for _ in range(3)]
    causes: list[BaseException | None] = []

    with psycopg.connect(postgres_dsn, options=f"-c search_path={pg_schema}") as blocker:
        blocker.execute("LOCK TABLE feedback IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(2.0, blocker.rollback)
        release.start()
        started = time.monotonic()
        while True:
            try:
                refused = store.write(received(events))
                break
            except DependencyUnavailable as error:
                causes.append(error.__cause__)
                assert time.monotonic() - started < 30, causes
                time.sleep(0.1)
        release.join()

    assert refused == {}
    assert causes, "the store must give up waiting while the lock is held"
    assert all(isinstance(c, cause) for c in causes), causes
    assert stored_event_ids(pg_connection) == sorted(str(e.event_id) for e in events)


def test_every_session_gets_the_timeouts_and_keeps_the_dsn_options(
    postgres_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HITL_POSTGRES__STATEMENT_TIMEOUT_SECONDS", "42")
    monkeypatch.setenv("HITL_POSTGRES__LOCK_TIMEOUT_SECONDS", "1.5")
    limits = load_settings().postgres
    assert limits == PostgresSettings(statement_timeout_seconds=42, lock_timeout_seconds=1.5)
    dsn = make_conninfo(postgres_dsn, options="-c work_mem=7MB")
    with open_pool(dsn, schema=pg_schema, limits=limits) as pool, pool.connection() as conn:
        shown = [
            conn.execute(f"SHOW {name}").fetchone()
            for name in ("statement_timeout", "lock_timeout", "search_path", "work_mem")
        ]
    assert shown == [("42s",), ("1500ms",), (pg_schema,), ("7MB",)]


def test_defaults_bound_every_wait(postgres_dsn: str) -> None:
    with open_pool(postgres_dsn) as pool, pool.connection() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1min",)
        assert conn.execute("SHOW lock_timeout").fetchone() == ("10s",)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (psycopg.errors.ReadOnlySqlTransaction, True),
        (psycopg.errors.IdleInTransactionSessionTimeout, True),
        (psycopg.errors.QueryCanceled, True),
        (psycopg.errors.LockNotAvailable, True),
        (psycopg.errors.SerializationFailure, True),
        (psycopg.errors.DeadlockDetected, True),
        (psycopg.errors.AdminShutdown, True),
        (psycopg.errors.CannotConnectNow, True),
        (psycopg.errors.TooManyConnections, True),
        (psycopg.errors.DiskFull, True),
        (psycopg.errors.ConnectionFailure, True),
        (psycopg.errors.UniqueViolation, False),
        (psycopg.errors.UntranslatableCharacter, False),
        (psycopg.errors.ProgramLimitExceeded, False),
        (psycopg.errors.UndefinedTable, False),
    ],
)
def test_sqlstates_are_classified_once(error: type[psycopg.Error], unavailable: bool) -> None:
    assert is_unavailable(error()) is unavailable
    assert is_refused(error()) is (error.sqlstate is not None and error.sqlstate[:2] in {"22", "23", "54"})
