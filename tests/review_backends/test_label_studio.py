"""What is Label Studio's own: projects, pre-annotations, webhooks; and the tool chosen per task kind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlparse

import argilla as rg
import httpx
import pytest

from tests.argilla_bridge.conftest import BridgeTopics, publish_tasks, read_resolutions
from tests.argilla_bridge.tasks import moderation_task, rag_task
from tests.review_backends.conftest import (
    NO_LABEL_STUDIO,
    ArgillaTool,
    LabelStudioTool,
    label_studio_reachable,
    review_settings,
    running_collector,
    wait_for,
)
from tests.runtime.conftest import running
from tests.support.kafka import read_topic
from tests.support.services import Services
from tests.support.tcp_proxy import tcp_proxy
from workers.contracts import LabelOutcome, RagVerdict
from workers.review.label_studio.webhooks import SECRET_HEADER
from workers.review.publisher import publisher


@pytest.fixture
def tool(services: Services, bridge_topics: BridgeTopics) -> Iterator[LabelStudioTool]:
    if not label_studio_reachable(
        os.environ.get("HITL_LABEL_STUDIO_URL", ""), os.environ.get("HITL_LABEL_STUDIO_TOKEN", "")
    ):
        pytest.fail(NO_LABEL_STUDIO, pytrace=False)
    made = LabelStudioTool(review_settings(services, bridge_topics, "label-studio"))
    yield made
    made.remove()


def test_each_label_set_gets_a_project_and_the_models_choice_is_pre_annotated(tool: LabelStudioTool) -> None:
    comments, images = moderation_task(1), moderation_task(2, task="images")
    with running(publisher(tool.settings), tool.settings):
        publish_tasks(tool.settings, [comments, images])
        refs = [tool.item_of(comments), tool.item_of(images)]
    titles = sorted(project["title"] for project in tool.projects())
    prefix = tool.settings.label_studio.project_prefix
    assert len(titles) == 2 and all(title.startswith(f"{prefix}-moderation-") for title in titles)
    stored = tool.task(refs[0])
    (prediction,) = stored["predictions"]
    assert prediction["score"] == pytest.approx(0.62)
    assert prediction["result"][0]["value"] == {"choices": ["toxic"]}
    assert stored["data"]["text"] == comments.source.item.text  # type: ignore[union-attr]
    project = next(p for p in tool.projects() if p["id"] == stored["project"])
    assert project["maximum_annotations"] == 1


def test_an_annotator_who_annotates_twice_counts_once_with_the_latest_answer(
    services: Services, bridge_topics: BridgeTopics, tool: LabelStudioTool
) -> None:
    settings = review_settings(services, bridge_topics, "label-studio", {"min_submitted": {"moderation": 2}})
    tool.settings = settings
    task = moderation_task(3)
    with running(publisher(settings), settings):
        publish_tasks(settings, [task])
        ref = tool.item_of(task)
    twice, other = tool.reviewer(), tool.reviewer()
    with running_collector(settings):
        twice.answer(ref, {"label": "ok"})
        twice.answer(ref, {"label": "toxic"})
        assert read_resolutions(settings, expect=0, timeout=4, settle=3) == [], "one annotator is one answer"
        other.answer(ref, {"label": "toxic"})
        (resolution,) = read_resolutions(settings, expect=1)
    assert resolution.outcome == LabelOutcome(label="toxic")
    assert resolution.agreement == 1.0
    assert resolution.reviewers == (twice.id, other.id)


def test_webhook_calls_without_the_secret_are_refused_and_other_projects_ignored(
    tool: LabelStudioTool,
) -> None:
    task = moderation_task(1)
    with running(publisher(tool.settings), tool.settings):
        publish_tasks(tool.settings, [task])
        ref = tool.item_of(task)
    url = tool.settings.label_studio.collector_public_url
    with running_collector(tool.settings) as collector:
        webhooks = [w for w in tool.http.get("/api/webhooks/").json() if w["url"] == url]
        assert [w["project"] for w in webhooks] == [tool.task(ref)["project"]]
        secret = webhooks[0]["headers"][SECRET_HEADER]
        assert secret == collector.backend.secret  # type: ignore[attr-defined]
        call = {
            "action": "ANNOTATION_CREATED",
            "task": {"id": int(ref)},
            "project": {"title": "someone-else"},
        }
        assert httpx.post(url, json=call).status_code == 401
        assert httpx.post(url, json=call, headers={SECRET_HEADER: secret + "x"}).status_code == 401
        answered = httpx.post(url, json=call, headers={SECRET_HEADER: secret})
        assert answered.status_code == 200 and answered.json()["tasks"] == 0
        assert httpx.post(url, content=b"[1, 2", headers={SECRET_HEADER: secret}).status_code == 400
        tool.reviewer().answer(ref, {"label": "ok"})
        (resolution,) = read_resolutions(tool.settings, expect=1)
    assert resolution.task_id == task.task_id


def test_task_kinds_go_to_the_tool_chosen_for_them_and_one_collector_serves_both(
    services: Services,
    bridge_topics: BridgeTopics,
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
) -> None:
    if not label_studio_reachable(
        os.environ.get("HITL_LABEL_STUDIO_URL", ""), os.environ.get("HITL_LABEL_STUDIO_TOKEN", "")
    ):
        pytest.fail(NO_LABEL_STUDIO, pytrace=False)
    settings = review_settings(
        services,
        bridge_topics,
        "argilla",
        {"workspace": argilla_workspace.name},
        review={"backend": "argilla", "backend_by_kind": {"moderation": "label-studio"}},
    )
    label_studio, argilla = (
        LabelStudioTool(settings),
        ArgillaTool(settings, argilla_client, argilla_workspace),
    )
    try:
        moderation, rag = moderation_task(1), rag_task(2)
        with running(publisher(settings), settings):
            publish_tasks(settings, [moderation, rag])
            in_label_studio, in_argilla = label_studio.item_of(moderation), argilla.item_of(rag)
        assert label_studio.items_of(rag) == [] and argilla.items_of(moderation) == []
        with running_collector(settings) as collector:
            assert [backend.name for backend in collector.backends] == ["argilla", "label-studio"]
            label_studio.reviewer().answer(in_label_studio, {"label": "ok"})
            argilla.reviewer().answer(in_argilla, {"verdict": "correct"})
            resolutions = {r.task_id: r for r in read_resolutions(settings, expect=2)}
            wait_for(
                lambda: label_studio.emitted(in_label_studio) and argilla.emitted(in_argilla), "both marked"
            )
        assert resolutions[moderation.task_id].outcome == LabelOutcome(label="ok")
        assert resolutions[rag.task_id].outcome.verdict is RagVerdict.CORRECT  # type: ignore[union-attr]
    finally:
        label_studio.remove()
        for webhook in argilla_client.http_client.get("/api/v1/webhooks").json()["items"]:
            if webhook["url"] == settings.argilla_bridge.collector_public_url:
                argilla_client.http_client.delete(f"/api/v1/webhooks/{webhook['id']}")


def test_label_studio_down_pauses_the_publisher_and_every_task_lands_once(
    services: Services, bridge_topics: BridgeTopics, tool: LabelStudioTool
) -> None:
    target = urlparse(tool.settings.label_studio_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        settings = tool.settings.model_copy(update={"label_studio_url": f"http://127.0.0.1:{proxy.port}"})
        tasks = [moderation_task(index) for index in range(5)]
        proxy.cut()
        with running(publisher(settings), settings) as runner:
            publish_tasks(settings, tasks)
            wait_for(lambda: runner.paused, "the publisher pausing while Label Studio is down")
            proxy.restore()
            for task in tasks:
                tool.item_of(task)
    assert all(len(tool.items_of(task)) == 1 for task in tasks)
    assert read_topic(settings.kafka_bootstrap, bridge_topics.tasks_dlq, expect=0, timeout=10) == []
