"""Reviewers as Argilla's interface has them: users who sign in with a password and submit responses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import argilla as rg
import httpx

from workers.demo.reviewers import post_response, sign_in


@dataclass
class Reviewer:
    """A signed-in annotator, talking to the same endpoints as Argilla's interface."""

    user: rg.User
    http: httpx.Client

    @property
    def id(self) -> uuid.UUID:
        assert self.user.id is not None
        return self.user.id

    def submit(self, record_id: uuid.UUID | str, values: dict[str, Any], status: str = "submitted") -> None:
        body = {"values": {name: {"value": value} for name, value in values.items()}, "status": status}
        post_response(self.http, record_id, body)

    def discard(self, record_id: uuid.UUID | str) -> None:
        # Argilla's interface sends empty values with a discard; without them Argilla 2.8 stores the
        # response but answers 500 and sends no webhook.
        post_response(self.http, record_id, {"values": {}, "status": "discarded"})


def sign_in_new_annotator(owner: rg.Argilla, api_url: str, workspace: rg.Workspace) -> Reviewer:
    """Creates an annotator in the workspace and signs them in with their password."""
    username = f"reviewer-{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    user = rg.User(username=username, password=password, role="annotator", client=owner).create()
    workspace.add_user(user)
    return Reviewer(user=user, http=sign_in(api_url, username, password).http)
