"""Settings, topics and running bridge processes for the Argilla bridge's tests, on the real services."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import argilla as rg
import pytest

from tests.conftest import TopicFactory, unique_name
from tests.support.kafka import produce, read_topic
from tests.support.processes import free_port
from tests.support.services import Services
from workers.config import Settings, load_settings
from workers.contracts import ReviewResolution, ReviewTask, decode, encode
from workers.review.argilla.layout import dataset_spec_for
from workers.review.collector import Collector
from workers.runtime.topics import dead_letter_topic_config

SCHEMA_MODULES = ("tests.argilla_bridge.schemas",)


@dataclass(frozen=True)
class BridgeTopics:
    tasks: str
    tasks_dlq: str
    resolved: str
    resolved_dlq: str = ""


@pytest.fixture
def bridge_topics(make_topic: TopicFactory) -> BridgeTopics:
    tasks = make_topic("tasks", partitions=3)
    dead_letters = make_topic(name=tasks + ".dlq", partitions=1, config=dead_letter_topic_config())
    resolved = make_topic("resolved", partitions=3)
    # The collector's dead letters: records it cannot resolve.
    resolved_dlq = make_topic(name=resolved + ".dlq", partitions=1, config=dead_letter_topic_config())
    return BridgeTopics(tasks, dead_letters, resolved, resolved_dlq)


MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(
    services: Services, bridge_topics: BridgeTopics, argilla_workspace: rg.Workspace
) -> MakeSettings:
    """Settings for this test's topics and workspace; keyword arguments override the bridge's."""
    group_prefix = unique_name("test")
    port = free_port()

    def make(argilla_api_url: str | None = None, **bridge: Any) -> Settings:
        bridge_settings: dict[str, Any] = {
            "workspace": argilla_workspace.name,
            "collector_port": port,
            "collector_public_url": f"http://127.0.0.1:{port}/argilla/webhook",
            "reconcile_interval_seconds": 3600,
            **bridge,
        }
        return load_settings(
            kafka_bootstrap=services.kafka_bootstrap,
            argilla_api_url=argilla_api_url or services.argilla_api_url,
            argilla_api_key=services.argilla_api_key,
            group_id_prefix=group_prefix,
            metrics_port=0,
            topics={"review_tasks": bridge_topics.tasks, "review_resolved": bridge_topics.resolved},
            runtime={"retry_initial_seconds": 0.2, "retry_max_seconds": 2.0, "batch_wait_seconds": 0.1},
            extraction_validator={"schema_modules": SCHEMA_MODULES},
            argilla_bridge=bridge_settings,
        )

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


def publish_tasks(settings: Settings, tasks: list[ReviewTask]) -> None:
    produce(
        settings.kafka_bootstrap,
        settings.topics.review_tasks,
        [(str(task.task_id).encode(), encode(task), [("content-type", b"avro/binary")]) for task in tasks],
    )


def read_resolutions(
    settings: Settings, expect: int, timeout: float = 90, settle: float = 2.0
) -> list[ReviewResolution]:
    messages = read_topic(
        settings.kafka_bootstrap,
        settings.topics.review_resolved,
        expect=expect,
        timeout=timeout,
        settle=settle,
    )
    resolutions = [decode(m.value, list(m.headers.items()), ReviewResolution) for m in messages]
    for message, resolution in zip(messages, resolutions, strict=True):
        assert message.key == str(resolution.task_id).encode()
    return resolutions


def dataset_named(client: rg.Argilla, workspace: rg.Workspace, name: str) -> dict[str, Any]:
    items = client.http_client.get("/api/v1/me/datasets").json()["items"]
    found = [d for d in items if d["workspace_id"] == str(workspace.id) and d["name"] == name]
    assert len(found) == 1, [d["name"] for d in items if d["workspace_id"] == str(workspace.id)]
    return dict(found[0])


def dataset_of(
    client: rg.Argilla, workspace: rg.Workspace, settings: Settings, task: ReviewTask
) -> dict[str, Any]:
    return dataset_named(client, workspace, dataset_spec_for(task, settings.argilla_bridge).name)


def records_of(client: rg.Argilla, dataset_id: str) -> list[dict[str, Any]]:
    response = client.http_client.get(
        f"/api/v1/datasets/{dataset_id}/records",
        params={"include": ["responses", "suggestions"], "limit": 1000},
    )
    response.raise_for_status()
    return list(response.json()["items"])


def wait_for(condition: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)


def record_by_task(client: rg.Argilla, workspace: rg.Workspace, task: ReviewTask) -> dict[str, Any]:
    """The task's record (by external id), once it is in Argilla."""

    def find() -> dict[str, Any] | None:
        items = client.http_client.get("/api/v1/me/datasets").json()["items"]
        for dataset in items:
            if dataset["workspace_id"] != str(workspace.id):
                continue
            for record in records_of(client, dataset["id"]):
                if record["external_id"] == str(task.task_id):
                    return record
        return None

    return dict(wait_for(find))


@contextmanager
def running_collector(settings: Settings, client: rg.Argilla) -> Iterator[Collector]:
    """Runs the collector in a background thread; stops it and removes its webhook afterwards."""
    collector = Collector(settings)
    thread = threading.Thread(target=collector.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: collector.started or not thread.is_alive(), timeout=30, interval=0.05)
        assert thread.is_alive(), "the collector did not start"
        yield collector
    finally:
        collector.stop()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the collector did not stop"


@pytest.fixture
def remove_webhooks(argilla_client: rg.Argilla, settings: Settings) -> Iterator[None]:
    """Deletes the webhook the collector registers, after the test."""
    yield
    for webhook in argilla_client.http_client.get("/api/v1/webhooks").json()["items"]:
        if webhook["url"] == settings.argilla_bridge.collector_public_url:
            argilla_client.http_client.delete(f"/api/v1/webhooks/{webhook['id']}")
