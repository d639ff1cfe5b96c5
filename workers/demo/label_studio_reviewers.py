"""Annotators of Label Studio for the demo (and the tests): users who sign up through Label
Studio's own form, with an invitation of the backend's user, and annotate through its REST API.

The open-source edition has no roles and no API to give a user a password: a person signs up with
the organisation's invite link; `POST /api/users/` would make a user who cannot sign in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from workers.review.answers import CORRECTED_ANSWER, CORRECTED_JSON, FAULT, LABEL, NOTE, VERDICT
from workers.review.label_studio import projects as ps

_TARGETS: dict[str, tuple[str, str]] = {
    LABEL: ("choices", ps.TEXT),
    VERDICT: ("choices", ps.ANSWER),
    FAULT: ("choices", ps.ANSWER),
    CORRECTED_ANSWER: ("textarea", ps.ANSWER),
    NOTE: ("textarea", ps.ANSWER),
    CORRECTED_JSON: ("textarea", ps.SOURCE_TEXT),
}


def result_for(values: Mapping[str, Any], image: bool = False) -> list[dict[str, Any]]:
    """An annotation's result answering each question with its value, as Label Studio's editor sends it."""
    result = []
    for question, value in values.items():
        kind, to_name = _TARGETS[question]
        if question == LABEL and image:
            to_name = ps.IMAGE
        payload = {"choices": [value]} if kind == "choices" else {"text": [value]}
        result.append({"from_name": question, "to_name": to_name, "type": kind, "value": payload})
    return result


@dataclass
class Annotator:
    email: str
    id: int
    http: httpx.Client

    def annotate(
        self, task_id: int | str, values: Mapping[str, Any], image: bool = False, skipped: bool = False
    ) -> int:
        """Submits an annotation (or skips the task); the annotation's id."""
        body = {"result": [] if skipped else result_for(values, image), "was_cancelled": skipped}
        response = self.http.post(f"/api/tasks/{task_id}/annotations/", json=body)
        response.raise_for_status()
        return int(response.json()["id"])

    def update(self, annotation_id: int, values: Mapping[str, Any], image: bool = False) -> None:
        response = self.http.patch(
            f"/api/annotations/{annotation_id}/", json={"result": result_for(values, image)}
        )
        response.raise_for_status()

    def close(self) -> None:
        self.http.close()


def sign_up(url: str, admin_token: str, email: str, password: str) -> Annotator:
    """Signs the annotator up with the organisation's invitation (or in, when they exist already)."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Token {admin_token}"}, timeout=30) as admin:
        invite = admin.get("/api/invite")
        invite.raise_for_status()
        invite_token = invite.json()["token"]
    form = httpx.Client(base_url=url, timeout=30)
    try:
        signed_up = _post_form(form, f"/user/signup/?token={invite_token}", email, password)
        if not signed_up and not _post_form(form, "/user/login/", email, password):
            raise RuntimeError(f"Label Studio refused to sign {email} up or in")
        token = form.get("/api/current-user/token")
        token.raise_for_status()
        whoami = form.get("/api/current-user/whoami")
        whoami.raise_for_status()
        user_id = int(whoami.json()["id"])
    finally:
        form.close()
    api = httpx.Client(base_url=url, headers={"Authorization": f"Token {token.json()['token']}"}, timeout=30)
    return Annotator(email=email, id=user_id, http=api)


def _post_form(form: httpx.Client, path: str, email: str, password: str) -> bool:
    """Posts Label Studio's sign-up or sign-in form; whether it signed in (a redirect)."""
    page = form.get(path)
    page.raise_for_status()
    csrf = form.cookies.get("csrftoken") or ""
    posted = form.post(
        path,
        data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
        headers={"Referer": str(form.base_url.join(path))},
    )
    return posted.status_code in (301, 302) and "sessionid" in form.cookies
