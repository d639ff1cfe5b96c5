"""The label store on the real PostgreSQL: what is stored, replays, re-reviews, refusals, outages."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from tests.conftest import ProxiedPostgres
from tests.label_sink.conftest import StoreFactory, all_rows, table_rows
from tests.label_sink.events import (
    T0,
    decision,
    extraction,
    feedback,
    mixed_resolutions,
    prediction,
    resolution,
)
from tests.support.sinks import write_when_back
from workers.contracts import (
    Event,
    Extraction,
    ExtractionOutcome,
    Feedback,
    LabelOutcome,
    LabelSource,
    Prediction,
    ResolutionStatus,
)
from workers.errors import DependencyUnavailable
from workers.label_sink.mapping import example_id, from_resolution
from workers.runtime.worker import Origin, Processed
from workers.storage.migrations import available_migrations
from workers.storage.postgres import REFUSED_REASON

TOPIC = "hitl.review.resolved"


def received(events: Sequence[Event], first_offset: int = 0, partition: int = 1) -> list[Processed]:
    return [
        Processed(event, Origin(TOPIC, partition, first_offset + n, T0 + timedelta(days=1)))
        for n, event in enumerate(events)
    ]


def test_each_kind_is_stored_with_its_companion_rows(
    make_store: StoreFactory, pg_connection: psycopg.Connection
) -> None:
    moderation, rag, extracted = prediction(1), feedback(2), extraction(3)
    discarded = resolution(prediction(4), status=ResolutionStatus.DISCARDED)
    events: list[Event] = [resolution(moderation), resolution(rag), resolution(extracted), discarded]

    assert make_store().write(received(events, first_offset=40)) == {}

    columns = (
        "example_id, kind, label_source, source_event_id, label, reviewers, agreement, model_name,"
        " model_version, source_topic, source_partition, source_offset, task_id, occurred_at,"
        " labelled_at, created_at"
    )
    rows = pg_connection.execute(f"SELECT {columns} FROM training_examples ORDER BY source_offset").fetchall()
    resolved_at, created_at = T0 + timedelta(hours=1), T0 + timedelta(days=1)
    expected: list[tuple[Prediction | Feedback | Extraction, str, str | None, int]] = [
        (moderation, "moderation", "toxic", 40),
        (rag, "rag_answer", None, 41),
        (extracted, "extraction", None, 42),
    ]
    assert rows == [
        (
            example_id(LabelSource.HUMAN, source.event_id),
            kind,
            "human",
            source.event_id,
            label,
            ["ann", "bob"],
            1.0,
            source.model.name,
            source.model.version,
            TOPIC,
            1,
            offset,
            source.event_id,
            T0,
            resolved_at,
            created_at,
        )
        for source, kind, label, offset in expected
    ]
    documents = pg_connection.execute(
        "SELECT input, model_output, human_output FROM training_examples WHERE kind = 'extraction'"
    ).fetchone()
    assert documents == (
        {
            "document": {"id": "invoice-3", "text": "Invoice 3: total 120.50 EUR, due 2026-04-01"},
            "schema_name": "invoice",
            "schema_version": "1",
        },
        {"raw_output": extracted.raw_output},
        {"total": 120.5, "currency": "EUR", "due": "2026-04-01"},
    )
    assert pg_connection.execute(
        "SELECT extraction_event_id, example_id, document_id, source_text, schema_name, schema_version,"
        " llm_output, corrected_output, reviewers, agreement, model_name, model_version, occurred_at,"
        " resolved_at FROM extraction_corrections"
    ).fetchall() == [
        (
            extracted.event_id,
            example_id(LabelSource.HUMAN, extracted.event_id),
            "invoice-3",
            "Invoice 3: total 120.50 EUR, due 2026-04-01",
            "invoice",
            "1",
            '{"total": "120.50 EUR", "due": 2026-04-01',
            '{"total": 120.5, "currency": "EUR", "due": "2026-04-01"}',
            ["ann", "bob"],
            1.0,
            "extractor-llm",
            "7b-q4",
            T0,
            resolved_at,
        )
    ]
    assert pg_connection.execute(
        "SELECT feedback_event_id, example_id, verdict, fault, corrected_answer, note, reviewers,"
        " agreement, resolved_at FROM rag_reviews"
    ).fetchall() == [
        (
            rag.event_id,
            example_id(LabelSource.HUMAN, rag.event_id),
            "incorrect",
            "generation",
            "Open Settings, then Security, then choose Reset password.",
            "the context had it",
            ["ann", "bob"],
            1.0,
            resolved_at,
        )
    ]
    assert pg_connection.execute(
        "SELECT task_id, kind, reviewers, agreement, resolved_at, source_topic, source_partition,"
        " source_offset FROM discarded_reviews"
    ).fetchall() == [(discarded.task_id, "moderation", ["ann", "bob"], 1.0, resolved_at, TOPIC, 1, 43)]


def test_a_replay_in_any_batching_changes_no_row(
    make_store: StoreFactory, pg_connection: psycopg.Connection
) -> None:
    events: list[Event] = [*mixed_resolutions(60), decision(), decision()]
    batch = received(events)
    store = make_store()
    assert store.write(batch) == {}
    first = all_rows(pg_connection)
    assert [len(rows) for rows in first.values()] == [56, 18, 18, 6]

    assert store.write(batch) == {}
    shuffled = batch[:]
    random.Random(7).shuffle(shuffled)
    for start in range(0, len(shuffled), 7):
        assert store.write(shuffled[start : start + 7] + shuffled[start : start + 2]) == {}
    assert make_store().write(batch) == {}

    assert all_rows(pg_connection) == first, "the same rows, stored_at and updated_at included"


def test_a_later_review_replaces_an_earlier_one_never_the_reverse(
    make_store: StoreFactory, pg_connection: psycopg.Connection
) -> None:
    source = prediction()
    early = resolution(source, LabelOutcome(label="toxic"), resolved_at=T0 + timedelta(hours=1))
    late = resolution(source, LabelOutcome(label="ok"), resolved_at=T0 + timedelta(hours=2))
    store = make_store()

    def stored() -> list[tuple[object, ...]]:
        return pg_connection.execute("SELECT label, labelled_at FROM training_examples").fetchall()

    assert store.write(received([early])) == {}
    assert stored() == [("toxic", early.resolved_at)]
    assert store.write(received([late])) == {}
    assert stored() == [("ok", late.resolved_at)]
    assert store.write(received([early])) == {}
    assert stored() == [("ok", late.resolved_at)]

    other = prediction()
    later_first = [
        resolution(other, LabelOutcome(label="ok"), resolved_at=T0 + timedelta(hours=2)),
        resolution(other, LabelOutcome(label="toxic"), resolved_at=T0 + timedelta(hours=1)),
    ]
    assert store.write(received(later_first)) == {}, "one batch may hold both"
    assert pg_connection.execute(
        "SELECT label FROM training_examples WHERE source_event_id = %s", (other.event_id,)
    ).fetchall() == [("ok",)]


def test_an_audited_decision_keeps_both_the_human_and_the_automatic_example(
    make_store: StoreFactory, pg_connection: psycopg.Connection
) -> None:
    audited = decision()
    assert make_store().write(received([audited, resolution(audited.source)])) == {}
    assert pg_connection.execute(
        "SELECT label_source, label, reviewers FROM training_examples ORDER BY label_source"
    ).fetchall() == [("auto", "toxic", []), ("human", "toxic", ["ann", "bob"])]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param(
            resolution(extraction(), ExtractionOutcome(corrected_json='{"total": "1\\u0000"}')),
            "refused by PostgreSQL (22P05): unsupported Unicode escape sequence;"
            " \\u0000 cannot be converted to text.",
            id="nul-escape-in-json",
        ),
        pytest.param(
            resolution(prediction(), reviewers=("ann\x00",)),
            "refused by psycopg for PostgreSQL: PostgreSQL text fields cannot contain NUL (0x00) bytes",
            id="nul-in-text",
        ),
    ],
)
def test_a_refused_event_is_returned_by_index_and_the_rest_is_stored(
    make_store: StoreFactory, pg_connection: psycopg.Connection, bad: Event, message: str
) -> None:
    good: list[Event] = list(mixed_resolutions(6))
    refused = make_store().write(received([*good[:2], bad, *good[2:]]))

    assert list(refused) == [2]
    assert refused[2].reason == REFUSED_REASON
    assert str(refused[2]) == message
    stored = {row[0] for row in table_rows(pg_connection, "training_examples")}
    assert stored == {example_id(LabelSource.HUMAN, event.task_id) for event in good[:6]}  # type: ignore[attr-defined]
    assert len(table_rows(pg_connection, "extraction_corrections")) == 2


def test_migrations_and_the_rag_feedback_view(
    make_store: StoreFactory, pg_connection: psycopg.Connection
) -> None:
    make_store()
    stored, not_stored = feedback(1), feedback(2)
    make_store().write(received([resolution(stored), resolution(not_stored)]))
    applied = pg_connection.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert applied == [(migration.version,) for migration in available_migrations()]
    assert applied[:2] == [("0001",), ("0002",)]
    pg_connection.execute(
        "INSERT INTO feedback (event_id, occurred_at, session_id, question, answer, contexts, rating,"
        " comment, model_name, model_version, source_topic, source_partition, source_offset)"
        " VALUES (%s, %s, 's', 'q', 'a', '[]', 'down', 'wrong menu', 'm', '1', 'hitl.feedback', 0, 0)",
        (stored.event_id, T0),
    )
    rows = pg_connection.execute(
        "SELECT feedback_event_id, verdict, feedback_stored, rating, comment FROM rag_feedback_reviews"
        " ORDER BY feedback_stored DESC"
    ).fetchall()
    assert rows == [
        (stored.event_id, "incorrect", True, "down", "wrong menu"),
        (not_stored.event_id, "incorrect", False, None, None),
    ]


# -- PostgreSQL unreachable ----------------------------------------------------------------------


def test_an_unreachable_database_raises_dependency_unavailable_until_it_is_back(
    make_store: StoreFactory, proxied_postgres: ProxiedPostgres, pg_connection: psycopg.Connection
) -> None:
    store = make_store(proxied_postgres.dsn, timeout=1.0)
    events: list[Event] = list(mixed_resolutions(12))
    assert store.write(received(events[:3])) == {}

    proxied_postgres.proxy.cut()
    causes: list[BaseException | None] = []
    while not causes or not isinstance(causes[-1], PoolTimeout):
        with pytest.raises(DependencyUnavailable) as raised:
            store.write(received(events))
        causes.append(raised.value.__cause__)
        assert len(causes) <= 5, causes
    assert len(table_rows(pg_connection, "training_examples")) == 3

    proxied_postgres.proxy.restore()
    assert write_when_back(store, received(events)) == {}
    assert len(table_rows(pg_connection, "training_examples")) == 11


def test_a_database_down_at_start_is_migrated_at_the_first_write_it_answers(
    make_store: StoreFactory, proxied_postgres: ProxiedPostgres, pg_connection: psycopg.Connection
) -> None:
    proxied_postgres.proxy.cut()
    store = make_store(proxied_postgres.dsn, timeout=1.0)
    event = resolution(prediction())
    with pytest.raises(DependencyUnavailable):
        store.write(received([event]))

    proxied_postgres.proxy.restore()
    assert write_when_back(store, received([event])) == {}
    assert len(table_rows(pg_connection, "training_examples")) == 1


def test_the_store_writes_the_handler_s_mapping_and_maps_an_event_given_without_one(
    make_store: StoreFactory, pg_connection: psycopg.Connection
) -> None:
    store = make_store()
    origin = Origin(TOPIC, 0, 7, None)
    handled, other = resolution(prediction()), resolution(prediction())

    assert store.write([Processed(other, origin)]) == {}
    assert store.write([Processed(handled, origin, effect=from_resolution(handled, origin))]) == {}

    assert {row[0] for row in table_rows(pg_connection, "training_examples")} == {
        example_id(LabelSource.HUMAN, handled.task_id),
        example_id(LabelSource.HUMAN, other.task_id),
    }
