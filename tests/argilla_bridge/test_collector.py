"""argilla-collector on the real Argilla: reviewers' answers become resolutions on the topic."""

from __future__ import annotations

import json
from typing import Any

import argilla as rg
import pytest

from tests.argilla_bridge.conftest import (
    MakeSettings,
    publish_tasks,
    read_resolutions,
    record_by_task,
    running_collector,
    wait_for,
)
from tests.argilla_bridge.tasks import extraction_task, moderation_task, rag_task
from tests.runtime.conftest import running
from tests.support.reviewers import Reviewer, sign_in_new_annotator
from tests.support.services import Services
from workers.config import Settings
from workers.contracts import (
    ExtractionOutcome,
    LabelOutcome,
    RagFault,
    RagOutcome,
    RagVerdict,
    ResolutionStatus,
    ReviewTask,
)
from workers.review.publisher import argilla_publisher

pytestmark = pytest.mark.usefixtures("remove_webhooks")


def _discard(reviewer: Reviewer, record_id: str) -> None:
    # With empty values, as Argilla's UI sends them: with none at all, Argilla 2.8 stores the
    # response but fails indexing it (500) and announces nothing.
    reviewer.submit(record_id, {}, status="discarded")


def _reviewers(client: rg.Argilla, services: Services, workspace: rg.Workspace, count: int) -> list[Reviewer]:
    return [sign_in_new_annotator(client, services.argilla_api_url, workspace) for _ in range(count)]


def _published(
    settings: Settings, client: rg.Argilla, workspace: rg.Workspace, *tasks: ReviewTask
) -> list[str]:
    """Publishes the tasks; their records' server ids."""
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, list(tasks))
        return [str(record_by_task(client, workspace, task)["id"]) for task in tasks]


def _record(client: rg.Argilla, record_id: str) -> dict[str, Any]:
    response = client.http_client.get(f"/api/v1/records/{record_id}")
    response.raise_for_status()
    return dict(response.json())


def test_one_reviewer_resolves_a_moderation_task(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    task = moderation_task(1)
    (record_id,) = _published(settings, argilla_client, argilla_workspace, task)
    (reviewer,) = _reviewers(argilla_client, services, argilla_workspace, 1)
    with running_collector(settings, argilla_client):
        reviewer.submit(record_id, {"label": "ok"})
        (resolution,) = read_resolutions(settings, expect=1)
        wait_for(lambda: _record(argilla_client, record_id)["metadata"]["review_state"] == "emitted")
    assert resolution.task_id == task.task_id
    assert resolution.kind == task.kind
    assert resolution.status is ResolutionStatus.SUBMITTED
    assert resolution.outcome == LabelOutcome(label="ok")
    assert resolution.reviewers == (str(reviewer.id),)
    assert resolution.agreement == 1.0
    assert resolution.source == task.source


@pytest.mark.parametrize(
    ("answers", "label", "agreement"),
    [(["toxic", "toxic", "toxic"], "toxic", 1.0), (["ok", "toxic", "ok"], "ok", 2 / 3)],
    ids=["agreeing", "disagreeing"],
)
def test_several_reviewers_resolve_by_majority(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    services: Services,
    make_settings: MakeSettings,
    answers: list[str],
    label: str,
    agreement: float,
) -> None:
    settings = make_settings(min_submitted={"moderation": 3, "rag_answer": 1, "extraction": 1})
    task = moderation_task(1)
    (record_id,) = _published(settings, argilla_client, argilla_workspace, task)
    reviewers = _reviewers(argilla_client, services, argilla_workspace, 3)
    with running_collector(settings, argilla_client):
        for reviewer, answer in zip(reviewers[:2], answers, strict=False):
            reviewer.submit(record_id, {"label": answer})
        assert read_resolutions(settings, expect=0, timeout=4, settle=3) == []
        reviewers[2].submit(record_id, {"label": answers[2]})
        (resolution,) = read_resolutions(settings, expect=1)
    assert resolution.outcome == LabelOutcome(label=label)
    assert resolution.agreement == pytest.approx(agreement, abs=1e-6)
    assert resolution.reviewers == tuple(str(r.id) for r in reviewers)


def test_a_record_its_reviewer_discards_resolves_as_discarded(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    task = moderation_task(1)
    (record_id,) = _published(settings, argilla_client, argilla_workspace, task)
    (reviewer,) = _reviewers(argilla_client, services, argilla_workspace, 1)
    with running_collector(settings, argilla_client):
        _discard(reviewer, record_id)
        (resolution,) = read_resolutions(settings, expect=1)
    assert resolution.status is ResolutionStatus.DISCARDED
    assert resolution.outcome is None
    assert resolution.reviewers == (str(reviewer.id),)
    assert resolution.source == task.source


def test_a_rag_review_resolves_with_verdict_fault_and_corrected_answer(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    task = rag_task(1)
    (record_id,) = _published(settings, argilla_client, argilla_workspace, task)
    (reviewer,) = _reviewers(argilla_client, services, argilla_workspace, 1)
    with running_collector(settings, argilla_client):
        reviewer.submit(
            record_id,
            {
                "verdict": "incorrect",
                "fault": "generation",
                "corrected_answer": "Open Settings > Security and choose Reset password.",
                "note": "kb-12 had it",
            },
        )
        (resolution,) = read_resolutions(settings, expect=1)
    assert resolution.outcome == RagOutcome(
        verdict=RagVerdict.INCORRECT,
        fault=RagFault.GENERATION,
        corrected_answer="Open Settings > Security and choose Reset password.",
        note="kb-12 had it",
    )


def test_an_invalid_correction_goes_back_to_its_reviewer_and_only_a_valid_one_resolves(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    task = extraction_task(1)
    (record_id,) = _published(settings, argilla_client, argilla_workspace, task)
    (reviewer,) = _reviewers(argilla_client, services, argilla_workspace, 1)
    invalid = '{"tracking_number": "JD0145", "weight_kg": -2}'
    valid = '{"tracking_number": "JD0145", "weight_kg": 2.5}'
    with running_collector(settings, argilla_client):
        reviewer.submit(record_id, {"corrected_json": invalid})

        def sent_back() -> dict[str, Any] | None:
            record = _record(argilla_client, record_id)
            return record if record["status"] == "pending" and "review_feedback" in record["fields"] else None

        record = wait_for(sent_back)
        assert "weight_kg" in record["fields"]["review_feedback"]
        assert "greater than 0" in record["fields"]["review_feedback"]
        (response,) = record["responses"]
        assert response["status"] == "draft"
        assert response["values"] == {"corrected_json": {"value": invalid}}
        assert read_resolutions(settings, expect=0, timeout=4, settle=3) == []

        # The reviewer finds the record again, fixes the draft and submits it, as the UI does.
        put = reviewer.http.put(
            f"/api/v1/responses/{response['id']}",
            json={"values": {"corrected_json": {"value": valid}}, "status": "submitted"},
        )
        put.raise_for_status()
        (resolution,) = read_resolutions(settings, expect=1)
    assert resolution.outcome == ExtractionOutcome(corrected_json=valid)
    assert json.loads(resolution.outcome.corrected_json) == {"tracking_number": "JD0145", "weight_kg": 2.5}


def test_records_completed_while_the_collector_was_down_are_reconciled_once(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    tasks = [moderation_task(i) for i in range(3)] + [rag_task(9)]
    record_ids = _published(settings, argilla_client, argilla_workspace, *tasks)
    (reviewer,) = _reviewers(argilla_client, services, argilla_workspace, 1)
    # A collector registers its webhook, then stops: Argilla's calls find nobody.
    with running_collector(settings, argilla_client):
        pass
    reviewer.submit(record_ids[0], {"label": "ok"})
    reviewer.submit(record_ids[1], {"label": "toxic"})
    _discard(reviewer, record_ids[2])
    reviewer.submit(record_ids[3], {"verdict": "correct", "fault": "none"})
    wait_for(lambda: _record(argilla_client, record_ids[0])["status"] == "completed")

    with running_collector(settings, argilla_client):
        resolutions = read_resolutions(settings, expect=4)
        wait_for(
            lambda: all(
                _record(argilla_client, rid)["metadata"]["review_state"] == "emitted" for rid in record_ids
            )
        )
    by_task = {r.task_id: r for r in resolutions}
    assert set(by_task) == {t.task_id for t in tasks}
    assert by_task[tasks[0].task_id].outcome == LabelOutcome(label="ok")
    assert by_task[tasks[1].task_id].outcome == LabelOutcome(label="toxic")
    assert by_task[tasks[2].task_id].status is ResolutionStatus.DISCARDED
    assert by_task[tasks[3].task_id].outcome == RagOutcome(verdict=RagVerdict.CORRECT, fault=RagFault.NONE)

    # Marked as emitted: the next start finds nothing to do.
    with running_collector(settings, argilla_client):
        assert len(read_resolutions(settings, expect=4, timeout=6, settle=4)) == 4


def test_the_collector_reuses_its_webhook_across_restarts(
    argilla_client: rg.Argilla, settings: Settings
) -> None:
    url = settings.argilla_bridge.collector_public_url
    secrets = []
    for _ in range(2):
        with running_collector(settings, argilla_client) as collector:
            assert collector.backend.webhook is not None
            secrets.append(collector.backend.webhook["secret"])
    ours = [w for w in argilla_client.http_client.get("/api/v1/webhooks").json()["items"] if w["url"] == url]
    assert len(ours) == 1
    assert set(ours[0]["events"]) == {"record.completed", "response.created", "response.updated"}
    assert secrets[0] == secrets[1] == ours[0]["secret"]
