"""The feedback table on the real PostgreSQL: what is stored, what is refused, which vote counts,
and what the store does when the database cannot be reached."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from tests.conftest import ProxiedPostgres
from tests.feedback_triage.conftest import StoreFactory, stored_event_ids
from tests.feedback_triage.events import T0, answer_key, feedback
from tests.support.sinks import write_when_back
from workers.contracts import Feedback, Rating, RetrievedContext
from workers.errors import DependencyUnavailable
from workers.runtime.worker import Origin, Processed
from workers.storage.migrations import available_migrations
from workers.storage.postgres import REFUSED_REASON

TOPIC = "hitl.feedback"


def received(events: list[Feedback], first_offset: int = 0) -> list[Processed]:
    return [Processed(event, Origin(TOPIC, 2, first_offset + n, None)) for n, event in enumerate(events)]


def test_every_field_is_stored_and_a_replay_changes_nothing(
    make_store: StoreFactory, pg_connection: psycopg.Connection
) -> None:
    full = feedback(comment="The menu is called Privacy now", user_id="user-9")
    bare = feedback(contexts=(), comment=None, user_id=None, prompt_version=None, rating=Rating.UP)
    store = make_store()

    assert store.write(received([full, bare], first_offset=40)) == {}
    first = pg_connection.execute("SELECT * FROM feedback ORDER BY source_offset").fetchall()
    assert store.write(received([bare, full, full], first_offset=90)) == {}

    assert pg_connection.execute("SELECT * FROM feedback ORDER BY source_offset").fetchall() == first
    columns = (
        "event_id, occurred_at, session_id, question, answer, answer_key, contexts, rating, comment,"
        " user_id, model_name, model_version, prompt_version, source_topic, source_partition, source_offset"
    )
    rows = pg_connection.execute(f"SELECT {columns} FROM feedback ORDER BY source_offset").fetchall()
    assert rows == [
        (
            full.event_id,
            full.occurred_at,
            "session-1",
            full.question,
            full.answer,
            answer_key(full),
            [
                {"doc_id": "kb-12", "text": "To reset a password, open Settings > Security.", "score": 0.91},
                {"doc_id": "kb-40", "text": "Passwords expire every 90 days.", "score": 0.42},
            ],
            "down",
            "The menu is called Privacy now",
            "user-9",
            "support-rag",
            "2.1.0",
            "p-7",
            TOPIC,
            2,
            40,
        ),
        (
            bare.event_id,
            bare.occurred_at,
            "session-1",
            bare.question,
            bare.answer,
            answer_key(bare),
            [],
            "up",
            None,
            None,
            "support-rag",
            "2.1.0",
            None,
            TOPIC,
            2,
            41,
        ),
    ]


def test_migrations_are_applied_once(
    make_store: StoreFactory, pg_connection: psycopg.Connection, pg_schema: str
) -> None:
    make_store()
    make_store().write(received([feedback()]))

    applied = pg_connection.execute("SELECT version, name FROM schema_migrations ORDER BY version")
    assert applied.fetchall() == [(m.version, m.name) for m in available_migrations()]
    assert ("0001", "feedback") in [(m.version, m.name) for m in available_migrations()]
    relations = pg_connection.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %s",
        (pg_schema,),
    ).fetchall()
    assert {("feedback", "BASE TABLE"), ("feedback_latest_votes", "VIEW")} <= set(relations)


NUL_CONTEXT = (RetrievedContext(doc_id="kb-1", text="broken\x00passage", score=0.5),)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"comment": "wrong\x00"},
            "refused by psycopg for PostgreSQL: PostgreSQL text fields cannot contain NUL (0x00) bytes",
        ),
        (
            {"contexts": NUL_CONTEXT},
            "refused by PostgreSQL (22P05): unsupported Unicode escape sequence;"
            " \\u0000 cannot be converted to text.",
        ),
        (
            {"session_id": "s" * 1025},
            'refused by PostgreSQL (23514): new row for relation "feedback" violates check constraint'
            ' "feedback_session_id_length"',
        ),
        (
            {"user_id": "é" * 513},
            'refused by PostgreSQL (23514): new row for relation "feedback" violates check constraint'
            ' "feedback_user_id_length"',
        ),
    ],
    ids=["nul-in-text", "nul-in-json", "session-id-too-long", "user-id-too-long"],
)
def test_a_refused_row_is_returned_by_index_and_the_rest_is_stored(
    make_store: StoreFactory, pg_connection: psycopg.Connection, fields: dict[str, Any], message: str
) -> None:
    good = [feedback() for _ in range(4)]
    bad = feedback(**fields)
    batch = [good[0], good[1], bad, good[2], good[3], good[1]]

    refused = make_store().write(received(batch))

    assert list(refused) == [2]
    assert refused[2].reason == REFUSED_REASON
    assert str(refused[2]).startswith(message)
    assert stored_event_ids(pg_connection) == sorted(str(event.event_id) for event in good)


# One vote: (name, user_id, session_id, question, answer, seconds after T0, event id number).
Vote = tuple[str, str | None, str, str, str, int, int]


@pytest.mark.parametrize(
    ("votes", "counted"),
    [
        pytest.param(
            [("down", "u1", "s1", "q1", "a", 0, 1), ("up", "u1", "s1", "q1", "a", 5, 2)],
            {"up"},
            id="the-latest-vote-counts",
        ),
        pytest.param(
            [("up", "u1", "s1", "q1", "a", 5, 1), ("down", "u1", "s1", "q1", "a", 0, 2)],
            {"up"},
            id="arrival-order-plays-no-part",
        ),
        pytest.param(
            [("down", "u1", "s1", "q1", "a", 0, 9), ("up", "u1", "s1", "q1", "a", 0, 3)],
            {"down"},
            id="a-tie-goes-to-the-greater-event-id",
        ),
        pytest.param(
            [("u1", "u1", "s1", "q1", "a", 0, 1), ("u2", "u2", "s1", "q1", "a", 5, 2)],
            {"u1", "u2"},
            id="each-user-has-a-vote",
        ),
        pytest.param(
            [("anon-1", None, "s1", "q1", "a", 0, 1), ("anon-2", None, "s1", "q1", "a", 5, 2)],
            {"anon-1", "anon-2"},
            id="anonymous-votes-count-alone",
        ),
        pytest.param(
            [("q1", "u1", "s1", "q1", "I don't know", 0, 1), ("q2", "u1", "s1", "q2", "I don't know", 5, 2)],
            {"q1", "q2"},
            id="the-same-text-to-another-question-is-another-answer",
        ),
        pytest.param(
            [("s1", "u1", "s1", "q1", "a", 0, 1), ("s2", "u1", "s2", "q1", "a", 5, 2)],
            {"s1", "s2"},
            id="another-session-is-another-answer",
        ),
        pytest.param(
            [
                ("first", "u1", "s1", "q1", "a", 0, 1),
                ("anon", None, "s1", "q1", "a", 7, 2),
                ("second", "u1", "s1", "q1", "a", 9, 3),
                ("other", "u2", "s1", "q1", "a", 1, 4),
                ("third", "u1", "s1", "q1", "a", 3, 5),
            ],
            {"second", "anon", "other"},
            id="several-voters-and-votes",
        ),
    ],
)
def test_the_latest_votes_view(
    make_store: StoreFactory, pg_connection: psycopg.Connection, votes: list[Vote], counted: set[str]
) -> None:
    store = make_store()
    ids: dict[uuid.UUID, str] = {}
    for offset, (name, user, session, question, answer, seconds, number) in enumerate(votes):
        event = feedback(
            event_id=uuid.UUID(int=number, version=4),
            user_id=user,
            session_id=session,
            question=question,
            answer=answer,
            occurred_at=T0 + timedelta(seconds=seconds),
        )
        ids[event.event_id] = name
        # One write per vote: the order of the list is the order of arrival.
        assert store.write(received([event], first_offset=offset)) == {}

    rows = pg_connection.execute("SELECT event_id FROM feedback_latest_votes").fetchall()
    assert sorted(ids[row[0]] for row in rows) == sorted(counted)


# -- PostgreSQL unreachable ----------------------------------------------------------------------


def expect_unavailable(write: Callable[[], object], cause: type[BaseException]) -> None:
    with pytest.raises(DependencyUnavailable) as raised:
        write()
    assert isinstance(raised.value.__cause__, cause), repr(raised.value.__cause__)


def test_an_unreachable_database_raises_dependency_unavailable_until_it_is_back(
    make_store: StoreFactory, proxied_postgres: ProxiedPostgres, pg_connection: psycopg.Connection
) -> None:
    store = make_store(proxied_postgres.dsn, timeout=1.0)
    events = [feedback() for _ in range(5)]
    assert store.write(received(events[:2])) == {}

    proxied_postgres.proxy.cut()
    causes: list[BaseException | None] = []
    while not causes or not isinstance(causes[-1], PoolTimeout):
        with pytest.raises(DependencyUnavailable) as raised:
            store.write(received(events))
        causes.append(raised.value.__cause__)
        assert len(causes) <= 5, causes
    # First the pooled connections, open when the path was cut, fail when used; then no connection
    # can be made and the wait for one times out.
    assert all(type(cause) is psycopg.OperationalError for cause in causes[:-1])
    assert len(causes) >= 2
    assert len(stored_event_ids(pg_connection)) == 2

    proxied_postgres.proxy.restore()
    assert write_when_back(store, received(events)) == {}
    assert stored_event_ids(pg_connection) == sorted(str(event.event_id) for event in events)


def test_a_database_down_at_start_is_migrated_at_the_first_write_it_answers(
    make_store: StoreFactory, proxied_postgres: ProxiedPostgres, pg_connection: psycopg.Connection
) -> None:
    proxied_postgres.proxy.cut()
    store = make_store(proxied_postgres.dsn, timeout=1.0)
    event = feedback()
    expect_unavailable(lambda: store.write(received([event])), PoolTimeout)

    proxied_postgres.proxy.restore()
    assert write_when_back(store, received([event])) == {}
    assert stored_event_ids(pg_connection) == [str(event.event_id)]


@pytest.mark.parametrize(
    "refused_first",
    [
        pytest.param(False, id="in-the-batch-statement"),
        pytest.param(True, id="in-the-row-by-row-transaction"),
    ],
)
def test_a_connection_dropped_mid_write_raises_dependency_unavailable(
    make_store: StoreFactory,
    proxied_postgres: ProxiedPostgres,
    pg_connection: psycopg.Connection,
    postgres_dsn: str,
    pg_schema: str,
    refused_first: bool,
) -> None:
    store = make_store(proxied_postgres.dsn, timeout=1.0)
    blocked = feedback()
    batch = [feedback(), blocked]
    if refused_first:
        # The batch statement fails at once for this row; the row-by-row transaction then blocks.
        batch.insert(0, feedback(contexts=NUL_CONTEXT))
    outcome: list[BaseException | object] = []

    with psycopg.connect(postgres_dsn, options=f"-c search_path={pg_schema}") as blocker:
        # An uncommitted insert of the same event id makes the store's insert wait for this transaction.
        blocker.execute(
            "INSERT INTO feedback (event_id, occurred_at, session_id, question, answer, contexts, rating,"
            " model_name, model_version, source_topic, source_partition, source_offset)"
            " VALUES (%s, now(), 's', 'q', 'a', '[]', 'up', 'm', '1', 't', 0, 0)",
            (blocked.event_id,),
        )

        def write() -> None:
            try:
                outcome.append(store.write(received(batch)))
            except BaseException as error:
                outcome.append(error)

        writer = threading.Thread(target=write)
        writer.start()
        wait_for_lock_wait(pg_connection, proxied_postgres.application_name)
        proxied_postgres.proxy.cut()
        writer.join(timeout=30)
        blocker.rollback()

    [error] = outcome
    assert isinstance(error, DependencyUnavailable), repr(error)
    assert isinstance(error.__cause__, psycopg.OperationalError)
    # Whether the server finished the statement after losing the client is unknown, as with any
    # connection lost before the reply: the retry must make it right either way.

    proxied_postgres.proxy.restore()
    refused = write_when_back(store, received(batch))
    assert list(refused) == ([0] if refused_first else [])  # type: ignore[call-overload]
    assert stored_event_ids(pg_connection) == sorted(str(event.event_id) for event in batch[-2:])


def wait_for_lock_wait(connection: psycopg.Connection, application_name: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            (application_name,),
        ).fetchone()
        if waiting and waiting[0]:
            return
        time.sleep(0.05)
    raise AssertionError("the store's insert never waited for the lock")
