"""Argilla for real: a dataset, records, an annotator's response, and signed webhooks for both events."""

from __future__ import annotations

import uuid

import argilla as rg
import pytest
from standardwebhooks import Webhook as SignatureVerifier
from standardwebhooks.webhooks import WebhookVerificationError

from tests.support.reviewers import sign_in_new_annotator
from tests.support.services import Services
from tests.support.webhook_listener import WebhookCall, webhook_listener


def test_annotator_response_is_stored_and_announced_by_signed_webhooks(
    argilla_client: rg.Argilla, argilla_workspace: rg.Workspace, services: Services
) -> None:
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="label", labels=["spam", "ham"])],
        distribution=rg.TaskDistribution(min_submitted=1),
    )
    dataset = rg.Dataset(
        name=f"smoke-{uuid.uuid4().hex[:8]}",
        workspace=argilla_workspace,
        settings=settings,
        client=argilla_client,
    ).create()
    record_ids = [uuid.uuid4() for _ in range(3)]
    dataset.records.log([{"id": str(rid), "text": f"message {i}"} for i, rid in enumerate(record_ids)])
    # The id we give is the record's external id; Argilla keys its endpoints by its own server id.
    server_ids = {record.id: record._server_id for record in dataset.records}
    assert set(server_ids) == {str(rid) for rid in record_ids}
    target = str(server_ids[str(record_ids[0])])

    reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
    with webhook_listener() as listener:
        webhook = rg.Webhook(
            url=listener.url, events=["response.created", "record.completed"], _client=argilla_client
        ).create()
        try:
            reviewer.submit(target, {"label": "spam"})

            def about_our_record(event: str) -> object:
                def matches(call: WebhookCall) -> bool:
                    payload = call.payload
                    data = payload.get("data", {})
                    record_id = (
                        data.get("record", {}).get("id") if event.startswith("response") else data.get("id")
                    )
                    return payload.get("type") == event and record_id == target

                return matches

            response_created = listener.wait_for(about_our_record("response.created"))
            record_completed = listener.wait_for(about_our_record("record.completed"))
        finally:
            webhook.delete()

    verifier = SignatureVerifier(webhook.secret)
    for call in (response_created, record_completed):
        verifier.verify(call.body, call.headers)
    assert response_created.payload["data"]["values"] == {"label": {"value": "spam"}}
    assert response_created.payload["data"]["user"]["id"] == str(reviewer.id)
    assert record_completed.payload["data"]["status"] == "completed"

    tampered = dict(record_completed.headers, **{"webhook-signature": "v1,AAAA"})
    with pytest.raises(WebhookVerificationError):
        verifier.verify(record_completed.body, tampered)

    stored = next(r for r in dataset.records(with_responses=True) if str(r.id) == str(record_ids[0]))
    assert [(r.value, str(r.user_id)) for r in stored.responses["label"]] == [("spam", str(reviewer.id))]
