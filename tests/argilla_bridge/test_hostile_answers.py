"""The collector against answers that break things, on the real Argilla and Kafka: one record never
holds back another, what the stores would refuse goes back to the reviewer, a failure is recorded
once, a resolution is the same bytes however often it is made, and an edit yields a new revision."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import argilla as rg
import psycopg
import pytest

from tests.argilla_bridge.conftest import (
    publish_tasks,
    read_resolutions,
    record_by_task,
    wait_for,
)
from tests.argilla_bridge.tasks import extraction_task, moderation_task, rag_task
from tests.conftest import TopicFactory
from tests.runtime.conftest import running
from tests.support.kafka import Received, read_topic
from tests.support.reviewers import Reviewer, sign_in_new_annotator
from tests.support.services import Services
from workers.config import Settings
from workers.contracts import (
    Extraction,
    ExtractionOutcome,
    LabelOutcome,
    ReviewResolution,
    ReviewTask,
    decode,
)
from workers.extraction_validator.registry import ExtractionSchemas
from workers.review.argilla.backend import ArgillaBackend
from workers.review.collecting import ResolutionEmitter, ResolutionRefused, Resolver
from workers.review.collector import Collector
from workers.review.corrections import correction_check
from workers.review.publisher import argilla_publisher
from workers.runtime.dead_letters import read_dead_letter_headers

pytestmark = pytest.mark.usefixtures("remove_webhooks")

NESTED_5000 = '{"tracking_number": "JD0145", "weight_kg": 2.5, "extra": ' + "[" * 5000 + "]" * 5000 + "}"


def _valid(weight: float) -> str:
    return json.dumps({"tracking_number": "JD0145", "weight_kg": weight})


def _published(
    settings: Settings, client: rg.Argilla, workspace: rg.Workspace, *tasks: ReviewTask
) -> list[str]:
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, list(tasks))
        return [str(record_by_task(client, workspace, task)["id"]) for task in tasks]


def _record(client: rg.Argilla, record_id: str) -> dict[str, Any]:
    response = client.http_client.get(f"/api/v1/records/{record_id}")
    response.raise_for_status()
    return dict(response.json())


def _sent_back(client: rg.Argilla, record_id: str) -> dict[str, Any] | None:
    record = _record(client, record_id)
    drafts = [r for r in record["responses"] if r["status"] == "draft"]
    return record if record["status"] == "pending" and drafts else None


def _dead_letters(settings: Settings, expect: int, **timing: float) -> list[Received]:
    topic = settings.topics.dead_letter_topic(settings.topics.review_resolved)
    return read_topic(settings.kafka_bootstrap, topic, expect=expect, **timing)


@contextmanager
def _collector(collector: Collector) -> Iterator[Collector]:
    thread = threading.Thread(target=collector.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: collector.started or not thread.is_alive(), timeout=30, interval=0.05)
        assert thread.is_alive(), "the collector did not start"
        yield collector
    finally:
        collector.stop()
        thread.join(timeout=60)


def _resolver(settings: Settings) -> Resolver:
    schemas = ExtractionSchemas.from_modules(settings.extraction_validator.schema_modules)
    return Resolver(ArgillaBackend(settings), ResolutionEmitter(settings), correction_check(schemas))


# -- 1. one record never holds back another ---------------------------------------------------------


def test_answers_given_while_the_collector_was_down_resolve_past_corrections_nested_5000_deep(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    tasks = [extraction_task(i) for i in range(6)]
    record_ids = _published(settings, argilla_client, argilla_workspace, *tasks)
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    with _collector(Collector(settings)):
        pass  # its webhook registered, then nobody answers Argilla's calls
    hostile = {1, 4}
    for index, record_id in enumerate(record_ids):
        reviewer.submit(record_id, {"corrected_json": NESTED_5000 if index in hostile else _valid(index + 1)})
    wait_for(lambda: all(_record(argilla_client, rid)["status"] == "completed" for rid in record_ids))

    with _collector(Collector(settings)):
        resolutions = read_resolutions(settings, expect=4)
        sent_back = [
            wait_for(lambda rid=rid: _sent_back(argilla_client, rid))
            for i, rid in enumerate(record_ids)
            if i in hostile
        ]

    good = [task for index, task in enumerate(tasks) if index not in hostile]
    assert sorted(str(r.task_id) for r in resolutions) == sorted(str(t.task_id) for t in good)
    for record in sent_back:
        assert "nested deeper than" in record["fields"]["review_feedback"]
        (response,) = record["responses"]
        assert response["values"] == {"corrected_json": {"value": NESTED_5000}}


def test_any_exception_of_one_record_is_dead_lettered_sent_back_and_the_pass_goes_on(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    tasks = [extraction_task(i) for i in range(3)]
    record_ids = _published(settings, argilla_client, argilla_workspace, *tasks)
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    breaking = _valid(666)
    for index, record_id in enumerate(record_ids):
        reviewer.submit(record_id, {"corrected_json": breaking if index == 0 else _valid(index + 1)})
    wait_for(lambda: all(_record(argilla_client, rid)["status"] == "completed" for rid in record_ids))
    resolver = _resolver(settings)
    checked = resolver.check_correction

    def check_that_breaks(source: Extraction, text: str) -> str | None:
        if text == breaking:
            raise RecursionError("maximum recursion depth exceeded")  # as any unforeseen failure
        return checked(source, text)

    resolver.check_correction = check_that_breaks
    collector = Collector(settings)
    collector.reconciler.resolver = resolver
    outcomes = collector.reconciler.run_once()

    assert outcomes["emitted"] == 2 and outcomes["failed"] == 1, outcomes
    assert {r.task_id for r in read_resolutions(settings, expect=2)} == {t.task_id for t in tasks[1:]}
    (letter,) = _dead_letters(settings, expect=1)
    assert letter.key == str(tasks[0].task_id).encode()
    assert decode(letter.value or b"", [("content-type", b"application/json")], ReviewTask) == tasks[0]
    failure = read_dead_letter_headers(list(letter.headers.items()))
    assert failure["worker"] == "argilla-collector"
    assert failure["reason"] == "resolution_failed"
    assert failure["error.class"] == "RecursionError"
    assert failure["source.record"] == record_ids[0]
    record = wait_for(lambda: _sent_back(argilla_client, record_ids[0]))
    assert "could not be processed" in record["fields"]["review_feedback"]

    # Sent back, the record is no longer a candidate: no second dead letter.
    assert collector.reconciler.run_once()["failed"] == 0
    assert len(_dead_letters(settings, expect=1, timeout=6, settle=3)) == 1


def test_a_record_that_cannot_be_read_is_dead_lettered_once_and_others_resolve(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    tasks = [moderation_task(i) for i in range(2)]
    record_ids = _published(settings, argilla_client, argilla_workspace, *tasks)
    broken = _record(argilla_client, record_ids[0])
    metadata = {**broken["metadata"], "_hitl_task": '{"not": "a task"}'}
    argilla_client.http_client.patch(
        f"/api/v1/records/{record_ids[0]}", json={"metadata": metadata}
    ).raise_for_status()
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    for record_id in record_ids:
        reviewer.submit(record_id, {"label": "ok"})
    wait_for(lambda: all(_record(argilla_client, rid)["status"] == "completed" for rid in record_ids))
    collector = Collector(settings)

    first = collector.reconciler.run_once()
    second = collector.reconciler.run_once()

    assert first["emitted"] == 1 and first["failed"] == 1, first
    assert second["emitted"] == 0 and second["failed"] == 0, second
    (resolution,) = read_resolutions(settings, expect=1)
    assert resolution.task_id == tasks[1].task_id
    (letter,) = _dead_letters(settings, expect=1, timeout=30, settle=3)
    assert read_dead_letter_headers(list(letter.headers.items()))["reason"] == "unreadable_record"
    assert json.loads(letter.value or b"") == {"not": "a task"}


def test_a_resolution_too_large_for_its_topic_is_dead_lettered_and_sent_back_and_the_webhook_answers_2xx(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    services: Services,
    settings: Settings,
    make_topic: TopicFactory,
) -> None:
    small = make_topic("resolved-small", partitions=1, config={"max.message.bytes": "4000"})
    settings = settings.model_copy(
        update={"topics": settings.topics.model_copy(update={"review_resolved": small})}
    )
    make_topic(name=small + ".dlq", partitions=1, config={"max.message.bytes": str(16 * 1024 * 1024)})
    tasks = [extraction_task(i) for i in range(2)]
    record_ids = _published(settings, argilla_client, argilla_workspace, *tasks)
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    # Random, so that compression does not bring it under the topic's limit.
    too_large = json.dumps({"tracking_number": base64.b64encode(os.urandom(6000)).decode(), "weight_kg": 2.5})
    with _collector(Collector(settings)) as collector:
        reviewer.submit(record_ids[0], {"corrected_json": too_large})
        reviewer.submit(record_ids[1], {"corrected_json": _valid(3)})
        (resolution,) = read_resolutions(settings, expect=1)
        record = wait_for(lambda: _sent_back(argilla_client, record_ids[0]))
        (letter,) = _dead_letters(settings, expect=1)
        answers = {
            sample.labels["answer"]: sample.value
            for metric in collector.metrics.registry.collect()
            for sample in metric.samples
            if sample.name == "hitl_argilla_webhook_calls_total"
        }
    assert resolution.task_id == tasks[1].task_id
    assert "MSG_SIZE_TOO_LARGE" in record["fields"]["review_feedback"]
    assert read_dead_letter_headers(list(letter.headers.items()))["reason"] == "refused_by_kafka"
    assert letter.key == str(tasks[0].task_id).encode()
    assert answers.get("retry", 0) == 0, answers


def test_a_resolution_beyond_the_producers_limit_is_refused_not_a_dependency_outage(
    settings: Settings,
) -> None:
    task = extraction_task(1)
    huge = json.dumps({"tracking_number": "J" * (17 * 1024 * 1024), "weight_kg": 1})
    resolution = ReviewResolution(
        task_id=task.task_id,
        kind=task.kind,
        outcome=ExtractionOutcome(corrected_json=huge),
        status="submitted",
        reviewers=("someone",),
        agreement=1.0,
        resolved_at=task.created_at,
        source=task.source,
    )
    emitter = ResolutionEmitter(settings)
    try:
        with pytest.raises(ResolutionRefused, match="MSG_SIZE_TOO_LARGE"):
            emitter.emit(resolution)
    finally:
        emitter.close()


# -- 5. what the sink would refuse goes back to the reviewer ----------------------------------------

REFUSED_BY_POSTGRES = {
    "nan": ('{"tracking_number": "JD0145", "weight_kg": NaN}', "NaN"),
    "infinity": ('{"tracking_number": "JD0145", "weight_kg": Infinity}', "Infinity"),
    "overflow": ('{"tracking_number": "JD0145", "weight_kg": 1e400}', "too large"),
    "nul": ('{"tracking_number": "JD\\u0000145", "weight_kg": 2.5}', "NUL"),
    "surrogate": ('{"tracking_number": "JD\\ud800145", "weight_kg": 2.5}', "surrogate"),
}


def test_corrections_postgresql_would_refuse_go_back_to_the_reviewer(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    tasks = [extraction_task(i) for i in range(len(REFUSED_BY_POSTGRES))]
    record_ids = _published(settings, argilla_client, argilla_workspace, *tasks)
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    with _collector(Collector(settings)):
        for record_id, (text, _) in zip(record_ids, REFUSED_BY_POSTGRES.values(), strict=True):
            reviewer.submit(record_id, {"corrected_json": text})
        records = [wait_for(lambda rid=rid: _sent_back(argilla_client, rid)) for rid in record_ids]
        assert read_resolutions(settings, expect=0, timeout=4, settle=2) == []
    for record, (name, (_, expected)) in zip(records, REFUSED_BY_POSTGRES.items(), strict=True):
        assert expected in record["fields"]["review_feedback"], (name, record["fields"]["review_feedback"])


# -- 2. a resolution is a pure function of the answers ----------------------------------------------


def test_resolving_the_same_answers_again_produces_the_same_message_bytes(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    task = moderation_task(1)
    (record_id,) = _published(settings, argilla_client, argilla_workspace, task)
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    reviewer.submit(record_id, {"label": "ok"})
    wait_for(lambda: _record(argilla_client, record_id)["status"] == "completed")
    before = _record(argilla_client, record_id)["metadata"]

    assert _resolver(settings).resolve_item(record_id) == "emitted"
    # A crash before the record was marked, or a second collector that read it unmarked.
    argilla_client.http_client.patch(
        f"/api/v1/records/{record_id}", json={"metadata": before}
    ).raise_for_status()
    time.sleep(1.1)
    assert _resolver(settings).resolve_item(record_id) == "emitted"

    first, second = read_topic(settings.kafka_bootstrap, settings.topics.review_resolved, expect=2)
    assert first.key == second.key == str(task.task_id).encode()
    assert first.value == second.value


# -- 4. an edit after emission is not dropped -------------------------------------------------------


def _edit(reviewer: Reviewer, record: dict[str, Any], values: dict[str, Any]) -> None:
    (response,) = record["responses"]
    put = reviewer.http.put(
        f"/api/v1/responses/{response['id']}",
        json={"values": {name: {"value": value} for name, value in values.items()}, "status": "submitted"},
    )
    put.raise_for_status()


def test_an_edit_after_emission_emits_the_next_revision_and_the_sink_row_follows(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    services: Services,
    settings: Settings,
    make_topic: TopicFactory,
    postgres_dsn: str,
    pg_schema: str,
    pg_connection: psycopg.Connection,
) -> None:
    from pydantic import SecretStr

    from workers.label_sink.worker import label_sink

    examples = make_topic("examples", partitions=1)
    settings = settings.model_copy(
        update={
            "postgres_dsn": SecretStr(postgres_dsn),
            "topics": settings.topics.model_copy(update={"training_examples": examples}),
        }
    )
    task = extraction_task(1)
    (record_id,) = _published(settings, argilla_client, argilla_workspace, task)
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)

    def stored() -> tuple[Any, ...] | None:
        return pg_connection.execute(
            "SELECT corrected_output, resolved_at FROM extraction_corrections WHERE extraction_event_id = %s",
            (task.task_id,),
        ).fetchone()

    with _collector(Collector(settings)), running(label_sink(settings, schema=pg_schema), settings):
        reviewer.submit(record_id, {"corrected_json": _valid(2.5)})
        (first,) = read_resolutions(settings, expect=1)
        wait_for(lambda: (row := stored()) is not None and row[0] == _valid(2.5))
        wait_for(lambda: _record(argilla_client, record_id)["metadata"]["review_state"] == "emitted")
        _edit(reviewer, _record(argilla_client, record_id), {"corrected_json": _valid(3.5)})
        first_again, second = read_resolutions(settings, expect=2)
        row = wait_for(lambda: (found := stored()) is not None and found[0] == _valid(3.5) and found)
        human_output = pg_connection.execute(
            "SELECT human_output, labelled_at FROM training_examples WHERE task_id = %s", (task.task_id,)
        ).fetchall()

    assert first_again == first and first.revision == 1
    assert second.task_id == task.task_id and second.revision == 2
    assert second.outcome == ExtractionOutcome(corrected_json=_valid(3.5))
    assert second.resolved_at > first.resolved_at
    assert row[1] == second.resolved_at
    assert human_output == [(json.loads(_valid(3.5)), second.resolved_at)]


def test_an_edit_made_while_the_collector_was_down_is_reconciled_into_the_next_revision(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    task = moderation_task(1)
    (record_id,) = _published(settings, argilla_client, argilla_workspace, task)
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    with _collector(Collector(settings)):
        reviewer.submit(record_id, {"label": "ok"})
        read_resolutions(settings, expect=1)
        wait_for(lambda: _record(argilla_client, record_id)["metadata"]["review_state"] == "emitted")
    _edit(reviewer, _record(argilla_client, record_id), {"label": "toxic"})

    with _collector(Collector(settings)):
        first, second = read_resolutions(settings, expect=2)
    # And once reconciled, the next pass finds nothing new.
    assert Collector(settings).reconciler.run_once()["emitted"] == 0
    assert (first.revision, first.outcome) == (1, LabelOutcome(label="ok"))
    assert (second.revision, second.outcome) == (2, LabelOutcome(label="toxic"))
    assert second.resolved_at > first.resolved_at
    assert len(read_resolutions(settings, expect=2, timeout=4, settle=2)) == 2


def test_a_rag_answer_with_a_nul_character_goes_back_to_its_reviewer(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    tasks = [rag_task(1), rag_task(2)]
    record_ids = _published(settings, argilla_client, argilla_workspace, *tasks)
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    with _collector(Collector(settings)):
        reviewer.submit(record_ids[0], {"verdict": "incorrect", "corrected_answer": "Press\x00 reset"})
        reviewer.submit(record_ids[1], {"verdict": "correct", "note": "fine"})
        (resolution,) = read_resolutions(settings, expect=1)
        record = wait_for(lambda: _sent_back(argilla_client, record_ids[0]))
    assert resolution.task_id == tasks[1].task_id
    (response,) = record["responses"]
    assert response["values"]["corrected_answer"] == {"value": "Press\x00 reset"}
