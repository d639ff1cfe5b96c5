"""Reviewers for the demo: annotator users who sign in and answer through Argilla's own endpoints.

A real deployment has people here, in Argilla's interface. The demo's reviewers give the answers a
careful reviewer would (samples/review_answers.jsonl), so that the loop closes into training data.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import argilla as rg
import httpx


@dataclass
class SignedInReviewer:
    username: str
    http: httpx.Client

    def submit(self, record_server_id: uuid.UUID | str, values: Mapping[str, Any]) -> None:
        body = {"values": {name: {"value": value} for name, value in values.items()}, "status": "submitted"}
        post_response(self.http, record_server_id, body)


def post_response(http: httpx.Client, record_server_id: uuid.UUID | str, body: Mapping[str, Any]) -> None:
    """Posts a reviewer's response as Argilla's interface does.

    Argilla 2.8 stores the response, then updates its search index; when its background worker
    updates the same record at that moment, the index update fails on a version conflict and the
    call answers 500 although the response is stored. Posting again then answers 409 (the response
    exists), which is success here.
    """
    url = f"/api/v1/records/{record_server_id}/responses"
    response = http.post(url, json=body)
    for _ in range(3):
        if response.status_code < 500:
            break
        time.sleep(0.5)
        response = http.post(url, json=body)
        if response.status_code == 409:
            return
    response.raise_for_status()


def sign_in(api_url: str, username: str, password: str) -> SignedInReviewer:
    http = httpx.Client(base_url=api_url, timeout=30)
    token = http.post("/api/v1/token", data={"username": username, "password": password})
    token.raise_for_status()
    http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return SignedInReviewer(username, http)


def find_user(owner: rg.Argilla, username: str) -> rg.User | None:
    # Listed, not `owner.users(username)`, which warns (UserWarning) when the user does not exist yet.
    return next((user for user in owner.users if user.username == username), None)


def find_workspace(owner: rg.Argilla, name: str) -> rg.Workspace | None:
    # Listed, not `owner.workspaces(name)`, which warns when the workspace does not exist yet.
    return next((workspace for workspace in owner.workspaces if workspace.name == name), None)


def ensure_annotator(owner: rg.Argilla, workspace: rg.Workspace, username: str, password: str) -> None:
    user = find_user(owner, username)
    if user is None:
        user = rg.User(username=username, password=password, role="annotator", client=owner).create()
    if username not in {member.username for member in workspace.users}:
        workspace.add_user(user)


def answer_values(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The response a reviewer gives for one task, by the Argilla question names of its kind."""
    kind = answer["kind"]
    if kind == "moderation":
        return {"label": answer["label"]}
    if kind == "rag_answer":
        values: dict[str, Any] = {"verdict": answer["verdict"]}
        if answer.get("fault"):
            values["fault"] = answer["fault"]
        if answer.get("corrected_answer"):
            values["corrected_answer"] = answer["corrected_answer"]
        return values
    if kind == "extraction":
        return {
            "corrected_json": json.dumps(json.loads(answer["corrected_json"]), indent=2, ensure_ascii=False)
        }
    raise ValueError(f"no answer form for kind {kind!r}")
