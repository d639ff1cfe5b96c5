"""The collector's webhook accepts only calls signed with its secret, recent ones: others get 401."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import argilla as rg
import httpx
import pytest
from standardwebhooks import Webhook

from tests.argilla_bridge.conftest import (
    publish_tasks,
    read_resolutions,
    record_by_task,
    running_collector,
    wait_for,
)
from tests.argilla_bridge.tasks import moderation_task
from tests.runtime.conftest import running
from tests.support.reviewers import sign_in_new_annotator
from tests.support.services import Services
from workers.config import Settings
from workers.contracts import LabelOutcome
from workers.review.argilla.layout import dataset_spec_for
from workers.review.publisher import argilla_publisher

pytestmark = pytest.mark.usefixtures("remove_webhooks")


def _signed(secret: str, body: str, at: datetime) -> dict[str, str]:
    message_id = f"msg_{uuid.uuid4().hex}"
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
        "content-type": "application/json",
    }


def test_unsigned_wrongly_signed_and_stale_calls_get_401_and_emit_nothing(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services, settings: Settings
) -> None:
    task = moderation_task(1)
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, [task])
        record = record_by_task(argilla_client, argilla_workspace, task)
    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    url = settings.argilla_bridge.collector_public_url

    with running_collector(settings, argilla_client) as collector:
        assert collector.backend.webhook is not None
        secret = str(collector.backend.webhook["secret"])
        # Argilla's own calls are switched off, so that only the calls below can reach the collector.
        argilla_client.http_client.patch(
            f"/api/v1/webhooks/{collector.backend.webhook['id']}", json={"enabled": False}
        ).raise_for_status()
        reviewer.submit(str(record["id"]), {"label": "ok"})
        wait_for(
            lambda: (
                argilla_client.http_client.get(f"/api/v1/records/{record['id']}").json()["status"]
                == "completed"
            )
        )

        payload: dict[str, Any] = {
            "type": "record.completed",
            "version": 1,
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {
                "id": str(record["id"]),
                "status": "completed",
                "dataset": {
                    "name": dataset_spec_for(task, settings.argilla_bridge).name,
                    "workspace": {"name": argilla_workspace.name},
                },
            },
        }
        body = json.dumps(payload)
        now = datetime.now(UTC)
        forged_secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
        unsigned = {"content-type": "application/json"}
        wrong = _signed(forged_secret, body, now)
        stale = _signed(secret, body, now - timedelta(minutes=10))
        tampered = _signed(secret, body, now)
        with httpx.Client(timeout=10) as http:
            for headers, content in ((unsigned, body), (wrong, body), (stale, body), (tampered, body + " ")):
                response = http.post(url, content=content, headers=headers)
                assert response.status_code == 401, (headers, response.text)
            assert read_resolutions(settings, expect=0, timeout=4, settle=3) == []

            response = http.post(url, content=body, headers=_signed(secret, body, datetime.now(UTC)))
            assert response.status_code == 200
            metrics = http.get(url.replace("/argilla/webhook", "/metrics")).text
        assert 'hitl_argilla_webhook_calls_total{answer="unauthorized"} 4.0' in metrics
        assert 'hitl_argilla_webhook_calls_total{answer="accepted"} 1.0' in metrics
        assert 'hitl_argilla_records_total{outcome="emitted",via="webhook"} 1.0' in metrics
        (resolution,) = read_resolutions(settings, expect=1)
    assert resolution.task_id == task.task_id
    assert resolution.outcome == LabelOutcome(label="ok")
