"""The review loop's behaviour on each backend, on the real tools: one driver per tool.

A `ReviewTool` does what a person does in the tool (finds a task's item, answers it as a
reviewer, reads what the collector wrote on it) through the tool's own API, so the same test
runs against Argilla and Label Studio.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import argilla as rg
import httpx
import pytest

from tests.argilla_bridge import conftest as bridge_fixtures
from tests.argilla_bridge.conftest import BridgeTopics
from tests.conftest import unique_name
from tests.support.processes import free_port
from tests.support.reviewers import sign_in_new_annotator
from tests.support.services import Services
from workers.config import Settings, load_settings
from workers.contracts import ReviewTask
from workers.demo.label_studio_reviewers import Annotator, sign_up
from workers.review.collector import Collector
from workers.review.label_studio import projects as ps
from workers.review.label_studio import tasks as ts

SCHEMA_MODULES = ("tests.argilla_bridge.schemas",)
BACKENDS = ("argilla", "label-studio")

NO_LABEL_STUDIO = """\
Label Studio is not reachable: the Label Studio backend's tests need it. Start it with
    deploy/local/stack up --with label-studio && eval "$(deploy/local/stack env)"
(`make test` does both), or set HITL_LABEL_STUDIO_URL and HITL_LABEL_STUDIO_TOKEN."""


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not in {timeout} s")
        time.sleep(interval)


class ToolReviewer(Protocol):
    @property
    def id(self) -> str:
        """The reviewer as a resolution names them."""
        ...

    def answer(self, ref: str, values: dict[str, Any]) -> None: ...

    def discard(self, ref: str) -> None: ...


class ReviewTool(Protocol):
    name: str
    settings: Settings

    def item_of(self, task: ReviewTask) -> str:
        """The id of the task's item, once it is in the tool."""
        ...

    def items_of(self, task: ReviewTask) -> list[dict[str, Any]]:
        """Every item the tool holds for the task (a replay must not add one)."""
        ...

    def reviewer(self) -> ToolReviewer: ...

    def emitted(self, ref: str) -> bool:
        """Whether the collector marked the item's resolution emitted."""
        ...

    def feedback(self, ref: str) -> str:
        """What the collector wrote to the item's reviewers."""
        ...

    def submitted_answers(self, ref: str) -> int:
        """The answers the tool counts as submitted on the item."""
        ...


def review_settings(
    services: Services,
    topics: BridgeTopics,
    backend: str,
    bridge: dict[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    port = free_port()
    values: dict[str, Any] = {
        "kafka_bootstrap": services.kafka_bootstrap,
        "argilla_api_url": services.argilla_api_url,
        "argilla_api_key": services.argilla_api_key,
        "label_studio_url": os.environ.get("HITL_LABEL_STUDIO_URL", ""),
        "label_studio_token": os.environ.get("HITL_LABEL_STUDIO_TOKEN", ""),
        "group_id_prefix": unique_name("test"),
        "metrics_port": 0,
        "topics": {"review_tasks": topics.tasks, "review_resolved": topics.resolved},
        "runtime": {"retry_initial_seconds": 0.2, "retry_max_seconds": 2.0, "batch_wait_seconds": 0.1},
        "extraction_validator": {"schema_modules": SCHEMA_MODULES},
        "review": {"backend": backend},
        "argilla_bridge": {
            "collector_port": port,
            "collector_public_url": f"http://127.0.0.1:{port}/argilla/webhook",
            "reconcile_interval_seconds": 3600,
            **(bridge or {}),
        },
        "label_studio": {
            "project_prefix": unique_name("test"),
            "collector_public_url": f"http://127.0.0.1:{port}/label-studio/webhook",
        },
    }
    return load_settings(**{**values, **overrides})


# -- Argilla ---------------------------------------------------------------------------------------


class ArgillaReviewer:
    def __init__(self, tool: ArgillaTool) -> None:
        self._tool = tool
        self._reviewer = sign_in_new_annotator(tool.client, tool.settings.argilla_api_url, tool.workspace)

    @property
    def id(self) -> str:
        return str(self._reviewer.id)

    def answer(self, ref: str, values: dict[str, Any]) -> None:
        """Submits the answer; over their own response, as Argilla's interface does, when they have one."""
        mine = [r for r in self._tool.record(ref)["responses"] if r["user_id"] == self.id]
        if not mine:
            self._reviewer.submit(ref, values)
            return
        body = {"values": {name: {"value": value} for name, value in values.items()}, "status": "submitted"}
        self._reviewer.http.put(f"/api/v1/responses/{mine[0]['id']}", json=body).raise_for_status()

    def discard(self, ref: str) -> None:
        self._reviewer.discard(ref)


class ArgillaTool:
    name = "argilla"

    def __init__(self, settings: Settings, client: rg.Argilla, workspace: rg.Workspace) -> None:
        self.settings, self.client, self.workspace = settings, client, workspace

    def _records(self) -> Iterator[dict[str, Any]]:
        for dataset in self.client.http_client.get("/api/v1/me/datasets").json()["items"]:
            if dataset["workspace_id"] != str(self.workspace.id):
                continue
            response = self.client.http_client.get(
                f"/api/v1/datasets/{dataset['id']}/records", params={"include": ["responses"], "limit": 1000}
            )
            response.raise_for_status()
            yield from response.json()["items"]

    def items_of(self, task: ReviewTask) -> list[dict[str, Any]]:
        return [record for record in self._records() if record["external_id"] == str(task.task_id)]

    def item_of(self, task: ReviewTask) -> str:
        return str(wait_for(lambda: self.items_of(task), f"the record of task {task.task_id}")[0]["id"])

    def reviewer(self) -> ArgillaReviewer:
        return ArgillaReviewer(self)

    def record(self, ref: str) -> dict[str, Any]:
        response = self.client.http_client.get(f"/api/v1/records/{ref}", params={"include": ["responses"]})
        response.raise_for_status()
        return dict(response.json())

    def emitted(self, ref: str) -> bool:
        return bool(self.record(ref)["metadata"].get("review_state") == "emitted")

    def feedback(self, ref: str) -> str:
        return str(self.record(ref)["fields"].get("review_feedback") or "")

    def submitted_answers(self, ref: str) -> int:
        return sum(1 for response in self.record(ref)["responses"] if response["status"] == "submitted")


# -- Label Studio ----------------------------------------------------------------------------------


class LabelStudioReviewer:
    def __init__(self, tool: LabelStudioTool) -> None:
        url = tool.settings.label_studio_url
        token = tool.settings.label_studio_token.get_secret_value()
        self.annotator: Annotator = sign_up(
            url, token, f"reviewer-{uuid.uuid4().hex[:10]}@hitl.test", uuid.uuid4().hex
        )
        tool.annotators.append(self.annotator)
        self.last_annotation: int | None = None

    @property
    def id(self) -> str:
        return str(self.annotator.id)

    def answer(self, ref: str, values: dict[str, Any]) -> None:
        self.last_annotation = self.annotator.annotate(ref, values)

    def discard(self, ref: str) -> None:
        self.last_annotation = self.annotator.annotate(ref, {}, skipped=True)


class LabelStudioTool:
    name = "label-studio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.Client(
            base_url=settings.label_studio_url,
            headers={"Authorization": f"Token {settings.label_studio_token.get_secret_value()}"},
            timeout=30,
        )
        self.annotators: list[Annotator] = []

    def projects(self) -> list[dict[str, Any]]:
        response = self.http.get("/api/projects", params={"page_size": 1000})
        response.raise_for_status()
        prefix = self.settings.label_studio.project_prefix + "-"
        return [p for p in response.json()["results"] if str(p["title"]).startswith(prefix)]

    def items_of(self, task: ReviewTask) -> list[dict[str, Any]]:
        found = []
        for project in self.projects():
            response = self.http.get(
                "/api/tasks", params={"project": project["id"], "fields": "all", "page_size": 1000}
            )
            response.raise_for_status()
            found += [t for t in response.json()["tasks"] if t["data"].get(ps.TASK_ID) == str(task.task_id)]
        return found

    def item_of(self, task: ReviewTask) -> str:
        return str(wait_for(lambda: self.items_of(task), f"the Label Studio task of {task.task_id}")[0]["id"])

    def reviewer(self) -> LabelStudioReviewer:
        return LabelStudioReviewer(self)

    def task(self, ref: str) -> dict[str, Any]:
        response = self.http.get(f"/api/tasks/{ref}")
        response.raise_for_status()
        return dict(response.json())

    def emitted(self, ref: str) -> bool:
        return bool(self.task(ref)["meta"].get(ts.REVIEW_STATE) == ts.EMITTED)

    def feedback(self, ref: str) -> str:
        return str(self.task(ref)["data"].get(ps.REVIEW_FEEDBACK) or "")

    def submitted_answers(self, ref: str) -> int:
        return sum(1 for a in self.task(ref)["annotations"] if not a["was_cancelled"])

    def remove(self) -> None:
        for project in self.projects():
            self.http.delete(f"/api/projects/{project['id']}")
        for annotator in self.annotators:
            annotator.close()
        self.http.close()


def label_studio_reachable(url: str, token: str) -> bool:
    if not url or not token:
        return False
    try:
        response = httpx.get(
            f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {token}"}, timeout=10
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


# -- fixtures --------------------------------------------------------------------------------------

MakeTool = Callable[..., ReviewTool]

bridge_topics = bridge_fixtures.bridge_topics


@pytest.fixture(params=BACKENDS)
def make_tool(request: pytest.FixtureRequest, services: Services) -> Iterator[MakeTool]:
    """Makes the test's review tool (of the parameter's backend) with settings of its own;
    keyword arguments override the settings (`bridge={...}` the Argilla bridge's)."""
    backend = str(request.param)
    topics: BridgeTopics = request.getfixturevalue("bridge_topics")
    made: list[Any] = []
    if backend == "label-studio" and not label_studio_reachable(
        os.environ.get("HITL_LABEL_STUDIO_URL", ""), os.environ.get("HITL_LABEL_STUDIO_TOKEN", "")
    ):
        pytest.fail(NO_LABEL_STUDIO, pytrace=False)

    def make(**extra: Any) -> ReviewTool:
        if made:
            raise RuntimeError("one tool per test")
        bridge = dict(extra.pop("bridge", {}))
        if backend == "argilla":
            client: rg.Argilla = request.getfixturevalue("argilla_client")
            workspace: rg.Workspace = request.getfixturevalue("argilla_workspace")
            settings = review_settings(
                services, topics, backend, {"workspace": workspace.name, **bridge}, **extra
            )
            tool: ReviewTool = ArgillaTool(settings, client, workspace)
        else:
            tool = LabelStudioTool(review_settings(services, topics, backend, bridge, **extra))
        made.append(tool)
        return tool

    yield make
    for tool in made:
        if isinstance(tool, LabelStudioTool):
            tool.remove()
        elif isinstance(tool, ArgillaTool):
            _remove_argilla_webhooks(tool)


def _remove_argilla_webhooks(tool: ArgillaTool) -> None:
    url = tool.settings.argilla_bridge.collector_public_url
    for webhook in tool.client.http_client.get("/api/v1/webhooks").json()["items"]:
        if webhook["url"] == url:
            tool.client.http_client.delete(f"/api/v1/webhooks/{webhook['id']}")


@contextmanager
def running_collector(settings: Settings) -> Iterator[Collector]:
    """Runs the collector (of the settings' backends) in a background thread; stops it afterwards."""
    collector = Collector(settings)
    thread = threading.Thread(target=collector.run, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: collector.started or not thread.is_alive(),
            "the collector's start",
            timeout=30,
            interval=0.05,
        )
        assert thread.is_alive(), "the collector did not start"
        yield collector
    finally:
        collector.stop()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the collector did not stop"
