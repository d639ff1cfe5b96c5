"""argilla-publisher on the real Argilla: datasets per kind, records per task, replays, refusals, outages."""

from __future__ import annotations

import json
import time
from urllib.parse import urlparse

import argilla as rg

from tests.argilla_bridge.conftest import (
    BridgeTopics,
    MakeSettings,
    dataset_named,
    dataset_of,
    publish_tasks,
    record_by_task,
    records_of,
    wait_for,
)
from tests.argilla_bridge.tasks import extraction_task, moderation_task, rag_task
from tests.runtime.conftest import running
from tests.support.kafka import read_topic
from tests.support.tcp_proxy import tcp_proxy
from workers.config import Settings
from workers.contracts import ReviewTask
from workers.review.publisher import argilla_publisher


def _by_name(items: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(item["name"]): item for item in items}


def _settings_of(
    client: rg.Argilla, dataset_id: str
) -> tuple[dict[str, dict], dict[str, dict], dict[str, dict]]:  # type: ignore[type-arg]
    http = client.http_client
    fields = _by_name(http.get(f"/api/v1/datasets/{dataset_id}/fields").json()["items"])
    questions = _by_name(http.get(f"/api/v1/datasets/{dataset_id}/questions").json()["items"])
    metadata = _by_name(http.get(f"/api/v1/me/datasets/{dataset_id}/metadata-properties").json()["items"])
    return fields, questions, metadata


def _suggestions(record: dict) -> list[dict]:  # type: ignore[type-arg]
    return list(record.get("suggestions") or [])


def test_tasks_of_each_kind_become_records_reviewers_understand(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, make_settings: MakeSettings
) -> None:
    settings = make_settings(min_submitted={"moderation": 2, "rag_answer": 1, "extraction": 1})
    moderation, rag, extraction = moderation_task(1), rag_task(2), extraction_task(3)
    image = moderation_task(4, content_type="image/png", uri="https://example.com/cat.png", text="a caption")
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, [moderation, rag, extraction, image])
        for task in (moderation, rag, extraction, image):
            record_by_task(argilla_client, argilla_workspace, task)

    text_dataset = dataset_of(argilla_client, argilla_workspace, settings, moderation)
    assert not text_dataset["name"].endswith("-image")
    assert text_dataset["distribution"] == {"strategy": "overlap", "min_submitted": 2}
    assert "Moderation review" in text_dataset["guidelines"]
    fields, questions, metadata = _settings_of(argilla_client, text_dataset["id"])
    assert set(fields) == {"text"}
    assert questions["label"]["settings"]["type"] == "label_selection"
    assert [o["value"] for o in questions["label"]["settings"]["options"]] == ["ok", "toxic"]
    assert {"model", "model_version", "confidence", "reason", "priority", "review_state"} <= set(metadata)
    assert metadata["confidence"]["settings"]["type"] == "float"
    assert metadata["priority"]["settings"]["type"] == "integer"
    assert metadata["model"]["settings"]["type"] == "terms"
    assert metadata["review_state"]["visible_for_annotators"] is False
    (record,) = records_of(argilla_client, text_dataset["id"])
    assert record["external_id"] == str(moderation.task_id)
    assert record["fields"] == {"text": moderation.source.item.text}  # type: ignore[union-attr]
    meta = record["metadata"]
    assert (meta["model"], meta["model_version"], meta["confidence"], meta["reason"], meta["priority"]) == (
        "toxicity-bert",
        "2.3.1",
        0.62,
        "grey_band",
        2,
    )
    assert ReviewTask.model_validate_json(meta["_hitl_task"]) == moderation
    (suggestion,) = _suggestions(record)
    assert suggestion["question_id"] == questions["label"]["id"]
    assert (suggestion["value"], suggestion["score"], suggestion["agent"]) == (
        "toxic",
        0.62,
        "toxicity-bert:2.3.1",
    )

    image_dataset = dataset_of(argilla_client, argilla_workspace, settings, image)
    assert image_dataset["name"] == text_dataset["name"] + "-image"
    image_fields, _, _ = _settings_of(argilla_client, image_dataset["id"])
    assert image_fields["image"]["settings"]["type"] == "image"
    (image_record,) = records_of(argilla_client, image_dataset["id"])
    assert image_record["fields"] == {"image": "https://example.com/cat.png", "text": "a caption"}

    rag_dataset = dataset_named(argilla_client, argilla_workspace, "hitl-rag_answer")
    fields, questions, metadata = _settings_of(argilla_client, rag_dataset["id"])
    assert set(fields) == {"question", "answer", "contexts"}
    assert [o["value"] for o in questions["verdict"]["settings"]["options"]] == [
        "correct",
        "incorrect",
        "partially_correct",
    ]
    assert {o["value"] for o in questions["fault"]["settings"]["options"]} >= {
        "retrieval",
        "generation",
        "both",
        "other",
    }
    assert questions["fault"]["required"] is False
    assert questions["corrected_answer"]["settings"]["type"] == "text"
    assert questions["corrected_answer"]["required"] is False
    assert questions["note"]["required"] is False
    (record,) = records_of(argilla_client, rag_dataset["id"])
    assert record["fields"]["question"] == "How do I reset my password?"
    assert "kb-12" in record["fields"]["contexts"] and "Settings > Security" in record["fields"]["contexts"]
    assert "there is a reset button" in record["fields"]["answer"]
    assert record["metadata"]["rating"] == "down"

    extraction_dataset = dataset_named(argilla_client, argilla_workspace, "hitl-extraction-parcel_label")
    fields, questions, metadata = _settings_of(argilla_client, extraction_dataset["id"])
    assert {"source_text", "validation_errors", "review_feedback"} == set(fields)
    assert questions["corrected_json"]["settings"]["type"] == "text"
    assert "schema_version" in metadata
    (record,) = records_of(argilla_client, extraction_dataset["id"])
    assert "weight_kg" in record["fields"]["validation_errors"]
    (suggestion,) = _suggestions(record)
    assert json.loads(suggestion["value"]) == {"tracking_number": "JD0145", "weight_kg": "heavy"}
    assert suggestion["agent"] == "extractor-llm:0.9"


def test_a_replayed_task_updates_its_record_and_never_duplicates_it(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, settings: Settings
) -> None:
    task = moderation_task(1)
    changed = task.model_copy(update={"priority": 9})
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, [task, task])
        record_by_task(argilla_client, argilla_workspace, task)
        publish_tasks(settings, [changed])
        dataset = dataset_of(argilla_client, argilla_workspace, settings, task)
        wait_for(lambda: records_of(argilla_client, dataset["id"])[0]["metadata"]["priority"] == 9)
    records = records_of(argilla_client, dataset["id"])
    assert len(records) == 1
    assert records[0]["external_id"] == str(task.task_id)


def test_tasks_are_logged_in_bulk_batches(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, make_settings: MakeSettings
) -> None:
    settings = make_settings(publish_batch_size=7)
    tasks = [moderation_task(i) for i in range(40)] + [rag_task(i) for i in range(5)]
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, tasks)
        moderation = wait_for(lambda: _dataset_if_any(argilla_client, argilla_workspace, "hitl-moderation-"))
        wait_for(lambda: len(records_of(argilla_client, moderation["id"])) == 40)
        rag = wait_for(lambda: _dataset_if_any(argilla_client, argilla_workspace, "hitl-rag_answer"))
        wait_for(lambda: len(records_of(argilla_client, rag["id"])) == 5)
    assert {r["external_id"] for r in records_of(argilla_client, moderation["id"])} == {
        str(t.task_id) for t in tasks[:40]
    }


def _dataset_if_any(client: rg.Argilla, workspace: rg.Workspace, prefix: str) -> dict | None:  # type: ignore[type-arg]
    items = client.http_client.get("/api/v1/me/datasets").json()["items"]
    found = [d for d in items if d["workspace_id"] == str(workspace.id) and d["name"].startswith(prefix)]
    return found[0] if found else None


def test_a_task_argilla_refuses_is_dead_lettered_with_argillas_message(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    settings: Settings,
    bridge_topics: BridgeTopics,
) -> None:
    good = [
        moderation_task(i, content_type="image/png", uri=f"https://example.com/{i}.png") for i in range(3)
    ]
    bad = moderation_task(9, content_type="image/png", uri="ftp://example.com/9.png")
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, [good[0], bad, good[1], good[2]])
        dead = read_topic(settings.kafka_bootstrap, bridge_topics.tasks_dlq, expect=1, timeout=60)
        for task in good:
            record_by_task(argilla_client, argilla_workspace, task)
    assert len(dead) == 1
    assert dead[0].key == str(bad.task_id).encode()
    headers = {k: v.decode() for k, v in dead[0].headers.items()}
    assert any("argilla_rejected" in value for value in headers.values()), headers
    assert any("image" in value and "422" in value for value in headers.values()), headers


def test_argilla_down_pauses_the_publisher_and_nothing_is_lost(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    make_settings: MakeSettings,
    bridge_topics: BridgeTopics,
    services: object,
) -> None:
    target = urlparse(argilla_client.api_url)
    tasks = [moderation_task(i) for i in range(30)]
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        settings = make_settings(argilla_api_url=f"http://127.0.0.1:{proxy.port}")
        with running(argilla_publisher(settings), settings) as runner:
            publish_tasks(settings, tasks[:5])
            for task in tasks[:5]:
                record_by_task(argilla_client, argilla_workspace, task)
            proxy.cut()
            publish_tasks(settings, tasks[5:])
            wait_for(lambda: runner.paused, timeout=30, interval=0.1)
            time.sleep(3)
            dataset = dataset_of(argilla_client, argilla_workspace, settings, tasks[0])
            assert len(records_of(argilla_client, dataset["id"])) == 5
            proxy.restore()
            wait_for(lambda: len(records_of(argilla_client, dataset["id"])) == 30, timeout=60)
    assert {r["external_id"] for r in records_of(argilla_client, dataset["id"])} == {
        str(t.task_id) for t in tasks
    }
    assert read_topic(settings.kafka_bootstrap, bridge_topics.tasks_dlq, expect=0, timeout=3, settle=1) == []


def test_the_publisher_starts_while_argilla_is_down_and_catches_up(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, make_settings: MakeSettings
) -> None:
    target = urlparse(argilla_client.api_url)
    tasks = [rag_task(i) for i in range(3)]
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        proxy.cut()
        settings = make_settings(argilla_api_url=f"http://127.0.0.1:{proxy.port}")
        with running(argilla_publisher(settings), settings) as runner:
            publish_tasks(settings, tasks)
            wait_for(lambda: runner.paused, timeout=30, interval=0.1)
            proxy.restore()
            for task in tasks:
                record_by_task(argilla_client, argilla_workspace, task)
