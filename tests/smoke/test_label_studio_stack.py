"""Label Studio for real: its token, a project with a task, and a webhook when a reviewer annotates.

Runs against the server that `deploy/local/stack up --with label-studio` starts, found through
HITL_LABEL_STUDIO_URL and HITL_LABEL_STUDIO_TOKEN.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.support.webhook_listener import WebhookCall, webhook_listener

START_IT = (
    'start it with `deploy/local/stack up --with label-studio && eval "$(deploy/local/stack env)"` '
    "(`make test` does both)"
)

LABEL_CONFIG = """
<View>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text" choice="single">
    <Choice value="spam"/>
    <Choice value="ham"/>
  </Choices>
</View>
"""


@dataclass(frozen=True)
class LabelStudio:
    url: str
    session: requests.Session
    user_id: int = 0

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}{path}", timeout=30, **kwargs)
        assert response.status_code == expect, (
            f"{method} {path}: {response.status_code} {response.text[:500]}"
        )
        return response.json() if response.content else None


def api_session(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    return session


@pytest.fixture(scope="module")
def label_studio() -> LabelStudio:
    url, token = os.environ.get("HITL_LABEL_STUDIO_URL"), os.environ.get("HITL_LABEL_STUDIO_TOKEN")
    if not url or not token:
        pytest.fail(
            f"HITL_LABEL_STUDIO_URL and HITL_LABEL_STUDIO_TOKEN are not set: {START_IT}", pytrace=False
        )
    try:
        answer = requests.get(
            f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {token}"}, timeout=10
        )
    except requests.ConnectionError:
        pytest.fail(f"Label Studio does not answer at {url}: {START_IT}", pytrace=False)
    if answer.status_code == 401:
        pytest.fail(f"Label Studio at {url} refuses HITL_LABEL_STUDIO_TOKEN", pytrace=False)
    return LabelStudio(url.rstrip("/"), api_session(token))


@pytest.fixture
def project(label_studio: LabelStudio) -> Iterator[dict[str, Any]]:
    created = label_studio.call(
        "POST",
        "/api/projects/",
        201,
        json={"title": f"smoke-{uuid.uuid4().hex[:8]}", "label_config": LABEL_CONFIG},
    )
    yield created
    label_studio.call("DELETE", f"/api/projects/{created['id']}/", 204)
    label_studio.call("GET", f"/api/projects/{created['id']}/", 404)


def import_task(label_studio: LabelStudio, project_id: int, text: str) -> int:
    imported = label_studio.call("POST", f"/api/projects/{project_id}/import", 201, json=[{"text": text}])
    assert imported["task_count"] == 1
    tasks = label_studio.call("GET", "/api/tasks/", 200, params={"project": project_id})["tasks"]
    return next(task["id"] for task in tasks if task["data"]["text"] == text)  # type: ignore[no-any-return]


def choice(value: str) -> list[dict[str, Any]]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [value]}}]


# Users are deleted after the projects they annotated in: a test asks for them before the project.
@pytest.fixture
def reviewer(label_studio: LabelStudio) -> Iterator[LabelStudio]:
    """A reviewer who signs up through the sign-up page, with an API session of their own token.

    The open-source edition has no API that gives out another user's token, and a user made through
    POST /api/users/ has no password, so can never sign in to fetch one.
    """
    email = f"reviewer-{uuid.uuid4().hex[:8]}@hitl.local"
    browser = requests.Session()
    browser.get(f"{label_studio.url}/user/signup/", timeout=30).raise_for_status()
    signed_up = browser.post(
        f"{label_studio.url}/user/signup/",
        data={
            "email": email,
            "password": uuid.uuid4().hex,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": f"{label_studio.url}/user/signup/"},
        allow_redirects=False,
        timeout=30,
    )
    assert signed_up.status_code == 302, f"sign-up refused: {signed_up.status_code} {signed_up.text[:500]}"
    token = browser.get(f"{label_studio.url}/api/current-user/token", timeout=30).json()["token"]
    me = LabelStudio(label_studio.url, api_session(token)).call("GET", "/api/current-user/whoami", 200)
    assert me["email"] == email
    yield LabelStudio(label_studio.url, api_session(token), user_id=me["id"])
    label_studio.call("DELETE", f"/api/users/{me['id']}/", 204)


@pytest.fixture
def member(label_studio: LabelStudio) -> Iterator[int]:
    """A member of the organization made through the API: no password, no way to sign in."""
    email = f"member-{uuid.uuid4().hex[:8]}@hitl.local"
    made = label_studio.call("POST", "/api/users/", 201, json={"email": email, "username": email})
    yield made["id"]
    label_studio.call("DELETE", f"/api/users/{made['id']}/", 204)


def test_the_token_identifies_the_admin(label_studio: LabelStudio) -> None:
    me = label_studio.call("GET", "/api/current-user/whoami", 200)
    assert me["email"]
    assert me["active_organization"] is not None


def test_a_reviewers_annotation_is_announced_by_a_webhook_with_our_header(
    label_studio: LabelStudio, reviewer: LabelStudio, project: dict[str, Any]
) -> None:
    task_id = import_task(label_studio, project["id"], "win a free cruise")
    secret = uuid.uuid4().hex
    with webhook_listener() as listener:
        label_studio.call(
            "POST",
            "/api/webhooks/",
            201,
            json={
                "project": project["id"],
                "url": listener.url,
                "headers": {"X-Hitl-Webhook-Secret": secret},
                "send_payload": True,
                "send_for_all_actions": False,
                "actions": ["ANNOTATION_CREATED"],
            },
        )
        annotation = reviewer.call(
            "POST", f"/api/tasks/{task_id}/annotations/", 201, json={"result": choice("spam")}
        )

        def about_our_annotation(call: WebhookCall) -> bool:
            payload = call.payload
            return (
                payload.get("action") == "ANNOTATION_CREATED"
                and payload["annotation"]["id"] == annotation["id"]
            )

        call = listener.wait_for(about_our_annotation, timeout=30)

    assert call.headers["x-hitl-webhook-secret"] == secret
    assert call.payload["annotation"]["completed_by"] == reviewer.user_id
    assert call.payload["annotation"]["result"][0]["value"] == {"choices": ["spam"]}
    assert call.payload["task"]["id"] == task_id
    assert call.payload["project"]["id"] == project["id"]


def test_the_admin_can_record_an_annotation_for_another_member(
    label_studio: LabelStudio, member: int, project: dict[str, Any]
) -> None:
    task_id = import_task(label_studio, project["id"], "lunch at noon?")

    label_studio.call(
        "POST",
        f"/api/tasks/{task_id}/annotations/",
        201,
        json={"result": choice("ham"), "completed_by": member},
    )

    stored = label_studio.call("GET", f"/api/tasks/{task_id}/annotations/", 200)
    assert [(a["completed_by"], a["result"][0]["value"]["choices"]) for a in stored] == [(member, ["ham"])]
