"""Replays never reopen finished work, and publishers racing to create a dataset both succeed.

On the real Argilla and Kafka: a task is published, the collector's marks are put on its record
(as the resolver writes them), then the task is replayed through the publisher, both as a copy on
the topic and as a re-read of the whole topic by a fresh consumer group (an offset reset).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import argilla as rg
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.argilla_bridge.conftest import (
    BridgeTopics,
    dataset_of,
    publish_tasks,
    record_by_task,
    records_of,
    wait_for,
)
from tests.argilla_bridge.tasks import extraction_task, moderation_task
from tests.runtime.conftest import running
from tests.support.kafka import read_topic
from workers.config import Settings
from workers.contracts import ReviewTask
from workers.errors import DependencyUnavailable
from workers.review.argilla import client as adapter_module
from workers.review.argilla import layout as ds
from workers.review.argilla.backend import ArgillaBackend
from workers.review.argilla.layout import dataset_spec_for
from workers.review.publisher import NAME, PublishingSink, argilla_publisher
from workers.runtime.worker import Origin, Processed

FEEDBACK = "**Your correction is not valid JSON**: line 1 column 9. Fix it and submit again."


def _committed(settings: Settings, topic: str) -> int:
    """How many of the topic's messages the publisher's consumer group has committed."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.group_id(NAME)})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return sum(max(tp.offset, 0) for tp in committed)
    finally:
        consumer.close()


def _mark_as_the_collector_does(client: rg.Argilla, record: dict[str, Any]) -> None:
    """The resolver's two writes: the feedback shown to the reviewer, then the emitted state."""
    http = client.http_client
    fields = {**record["fields"], ds.REVIEW_FEEDBACK: FEEDBACK}
    http.patch(f"/api/v1/records/{record['id']}", json={"fields": fields}).raise_for_status()
    metadata = {**record["metadata"], ds.REVIEW_STATE: ds.EMITTED}
    http.patch(f"/api/v1/records/{record['id']}", json={"metadata": metadata}).raise_for_status()


def test_a_replayed_task_leaves_emitted_work_and_its_feedback_as_the_collector_left_them(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    settings: Settings,
    bridge_topics: BridgeTopics,
) -> None:
    emitted, awaiting = extraction_task(1), extraction_task(2)
    tasks = [emitted, awaiting]
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, tasks)
        first = record_by_task(argilla_client, argilla_workspace, emitted)
        record_by_task(argilla_client, argilla_workspace, awaiting)
        wait_for(lambda: _committed(settings, bridge_topics.tasks) == 2)
        _mark_as_the_collector_does(argilla_client, first)

        # A copy of each task on the topic, as a producer's retry or a re-routing would write it.
        publish_tasks(settings, tasks)
        wait_for(lambda: _committed(settings, bridge_topics.tasks) == 4)

    # An offset reset: a publisher of another group reads the whole topic again.
    replaying = settings.model_copy(update={"group_id_prefix": f"replay-{uuid.uuid4().hex[:8]}"})
    with running(argilla_publisher(replaying), replaying):
        wait_for(lambda: _committed(replaying, bridge_topics.tasks) == 4)

    dataset = dataset_of(argilla_client, argilla_workspace, settings, emitted)
    records = {r["external_id"]: r for r in records_of(argilla_client, dataset["id"])}
    assert len(records_of(argilla_client, dataset["id"])) == 2
    assert set(records) == {str(emitted.task_id), str(awaiting.task_id)}
    replayed = records[str(emitted.task_id)]
    assert replayed["metadata"][ds.REVIEW_STATE] == ds.EMITTED
    assert replayed["fields"][ds.REVIEW_FEEDBACK] == FEEDBACK
    assert ReviewTask.model_validate_json(replayed["metadata"][ds.TASK_JSON]) == emitted
    assert records[str(awaiting.task_id)]["metadata"][ds.REVIEW_STATE] == ds.AWAITING
    assert read_topic(settings.kafka_bootstrap, bridge_topics.tasks_dlq, expect=0, timeout=3, settle=1) == []


def test_a_task_id_published_again_with_other_content_keeps_the_collectors_marks(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, settings: Settings
) -> None:
    task = extraction_task(1)
    changed = task.model_copy(update={"priority": 9})
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, [task])
        record = record_by_task(argilla_client, argilla_workspace, task)
        argilla_client.http_client.patch(
            f"/api/v1/records/{record['id']}",
            json={"fields": {**record["fields"], ds.REVIEW_FEEDBACK: FEEDBACK}},
        ).raise_for_status()
        publish_tasks(settings, [changed])
        dataset = dataset_of(argilla_client, argilla_workspace, settings, task)
        wait_for(lambda: records_of(argilla_client, dataset["id"])[0]["metadata"]["priority"] == 9)
    (updated,) = records_of(argilla_client, dataset["id"])
    assert updated["fields"][ds.REVIEW_FEEDBACK] == FEEDBACK
    assert updated["metadata"][ds.REVIEW_STATE] == ds.AWAITING
    assert ReviewTask.model_validate_json(updated["metadata"][ds.TASK_JSON]) == changed


def _received(tasks: list[ReviewTask], partition: int) -> list[Processed]:
    return [Processed(task, Origin("tasks", partition, offset, None)) for offset, task in enumerate(tasks)]


def test_two_publishers_creating_the_same_dataset_at_once_both_land_their_batches(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, settings: Settings
) -> None:
    batches = [[moderation_task(i) for i in range(start, start + 20)] for start in (0, 100, 200, 300)]
    sinks = [PublishingSink(ArgillaBackend(settings)) for _ in batches]
    for sink in sinks:
        sink.backend.adapter.client  # noqa: B018  (connect first, as the sink does, outside the race)
    start = threading.Barrier(len(sinks))
    results: list[Any] = [None] * len(sinks)

    def publish(number: int) -> None:
        start.wait()
        try:
            results[number] = sinks[number].write(_received(batches[number], number))
        except Exception as error:
            results[number] = error

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(len(sinks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for sink in sinks:
        sink.close()

    assert results == [{}] * len(sinks), results
    dataset = dataset_of(argilla_client, argilla_workspace, settings, batches[0][0])
    assert dataset["status"] == "ready"
    landed = [r["external_id"] for r in records_of(argilla_client, dataset["id"])]
    assert sorted(landed) == sorted(str(t.task_id) for batch in batches for t in batch)


def _draft_of(client: rg.Argilla, workspace: rg.Workspace, name: str) -> str:
    """A dataset left as a draft, as a publisher that crashed while creating it leaves it."""
    response = client.http_client.post(
        "/api/v1/datasets", json={"name": name, "workspace_id": str(workspace.id)}
    )
    response.raise_for_status()
    return str(response.json()["id"])


def test_another_publishers_fresh_draft_is_waited_for_not_deleted(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(adapter_module, "DRAFT_WAIT_SECONDS", 2.0)
    task = moderation_task(1)
    name = dataset_spec_for(task, settings.argilla_bridge).name
    draft = _draft_of(argilla_client, argilla_workspace, name)
    sink = PublishingSink(ArgillaBackend(settings))
    try:
        with pytest.raises(DependencyUnavailable, match="being created"):
            sink.write(_received([task], 0))
    finally:
        sink.close()
    assert argilla_client.http_client.get(f"/api/v1/datasets/{draft}").json()["status"] == "draft"


def test_a_draft_abandoned_by_a_crashed_publisher_is_replaced_and_the_batch_lands(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(adapter_module, "DRAFT_WAIT_SECONDS", 5.0)
    monkeypatch.setattr(adapter_module, "DRAFT_ABANDONED_SECONDS", 1.0)
    tasks = [moderation_task(i) for i in range(3)]
    draft = _draft_of(
        argilla_client, argilla_workspace, dataset_spec_for(tasks[0], settings.argilla_bridge).name
    )
    sink = PublishingSink(ArgillaBackend(settings))
    try:
        assert sink.write(_received(tasks, 0)) == {}
    finally:
        sink.close()
    dataset = dataset_of(argilla_client, argilla_workspace, settings, tasks[0])
    assert dataset["id"] != draft and dataset["status"] == "ready"
    assert sorted(r["external_id"] for r in records_of(argilla_client, dataset["id"])) == sorted(
        str(t.task_id) for t in tasks
    )
