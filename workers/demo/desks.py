"""Where the demo's reviewers work: a desk per review tool the settings send task kinds to.

Each desk empties the demo's part of its tool, counts the demo's items, has the simulated reviewers
answer every item (samples/review_answers.jsonl, keyed by task id), and says where to sign in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import argilla as rg
import httpx

from workers.config import Settings
from workers.demo.label_studio_reviewers import Annotator, sign_up
from workers.demo.reviewers import answer_values, ensure_annotator, find_workspace, sign_in
from workers.review.label_studio import projects as ps

WORKSPACE = "hitl-demo"
PROJECT_PREFIX = "hitl-demo"
REVIEWERS = ("demo-reviewer-ana", "demo-reviewer-ben")
REVIEWER_PASSWORD = "demo-reviewer-12345"
REVIEWER_EMAIL_DOMAIN = "hitl.local"


class ReviewDesk(Protocol):
    where: str
    """Where the demo's items are, in a few words."""

    def reset(self) -> None: ...

    def count_items(self) -> int: ...

    def answer_all(self, answers: Mapping[str, Mapping[str, Any]]) -> int:
        """Answers every item that has an answer; how many."""
        ...

    def sign_in(self) -> str:
        """Where and as whom a person signs in to look."""
        ...


class ArgillaDesk:
    where = f"records in Argilla (workspace {WORKSPACE})"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.owner = rg.Argilla(
            api_url=settings.argilla_api_url, api_key=settings.argilla_api_key.get_secret_value()
        )

    def reset(self) -> None:
        workspace = find_workspace(self.owner, WORKSPACE)
        if workspace is not None:
            for dataset in workspace.datasets:
                dataset.delete()
        else:
            workspace = rg.Workspace(name=WORKSPACE, client=self.owner).create()
        for username in REVIEWERS:
            ensure_annotator(self.owner, workspace, username, REVIEWER_PASSWORD)

    def datasets(self) -> Iterator[rg.Dataset]:
        workspace = find_workspace(self.owner, WORKSPACE)
        if workspace is not None:
            # Fetched by name, so that each comes with its settings, which reading suggestions needs.
            for listed in workspace.datasets:
                dataset = self.owner.datasets(listed.name, workspace=WORKSPACE)
                if dataset is not None:
                    yield dataset

    def count_items(self) -> int:
        return sum(len(list(dataset.records)) for dataset in self.datasets())

    def answer_all(self, answers: Mapping[str, Mapping[str, Any]]) -> int:
        reviewers = [sign_in(self.settings.argilla_api_url, name, REVIEWER_PASSWORD) for name in REVIEWERS]
        answered = 0
        for dataset in self.datasets():
            for record in dataset.records:
                answer = answers.get(str(record.id))
                if answer is None:
                    continue
                reviewers[answered % len(reviewers)].submit(record._server_id, answer_values(answer))
                answered += 1
        return answered

    def sign_in(self) -> str:
        return (
            f"Argilla: {self.settings.argilla_api_url}  (owner argilla / 12345678; reviewers "
            f"{', '.join(REVIEWERS)} / {REVIEWER_PASSWORD})"
        )


class LabelStudioDesk:
    where = f"tasks in Label Studio (projects {PROJECT_PREFIX}-*)"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.Client(
            base_url=settings.label_studio_url,
            headers={"Authorization": f"Token {settings.label_studio_token.get_secret_value()}"},
            timeout=60,
        )

    def projects(self) -> list[dict[str, Any]]:
        response = self.http.get("/api/projects", params={"page_size": 1000})
        response.raise_for_status()
        return [p for p in response.json()["results"] if str(p["title"]).startswith(PROJECT_PREFIX + "-")]

    def tasks(self) -> Iterator[dict[str, Any]]:
        for project in self.projects():
            page = 1
            while True:
                params = {"project": project["id"], "page": page, "page_size": 100}
                response = self.http.get("/api/tasks", params=params)
                if response.status_code == 404:  # past the last page
                    break
                response.raise_for_status()
                tasks = response.json()["tasks"]
                yield from tasks
                if len(tasks) < 100:
                    break
                page += 1

    def reset(self) -> None:
        for project in self.projects():
            self.http.delete(f"/api/projects/{project['id']}").raise_for_status()

    def count_items(self) -> int:
        return sum(1 for _ in self.tasks())

    def answer_all(self, answers: Mapping[str, Mapping[str, Any]]) -> int:
        reviewers = [self._annotator(name) for name in REVIEWERS]
        answered = 0
        try:
            for task in list(self.tasks()):
                answer = answers.get(str(task["data"].get(ps.TASK_ID)))
                if answer is None:
                    continue
                image = ps.IMAGE in task["data"]
                reviewers[answered % len(reviewers)].annotate(task["id"], answer_values(answer), image=image)
                answered += 1
        finally:
            for reviewer in reviewers:
                reviewer.close()
        return answered

    def _annotator(self, name: str) -> Annotator:
        token = self.settings.label_studio_token.get_secret_value()
        return sign_up(self.settings.label_studio_url, token, self._email(name), REVIEWER_PASSWORD)

    @staticmethod
    def _email(name: str) -> str:
        return f"{name}@{REVIEWER_EMAIL_DOMAIN}"

    def sign_in(self) -> str:
        emails = ", ".join(self._email(name) for name in REVIEWERS)
        return f"Label Studio: {self.settings.label_studio_url}  (reviewers {emails} / {REVIEWER_PASSWORD})"


def desks_for(settings: Settings) -> list[ReviewDesk]:
    desks: list[ReviewDesk] = []
    for backend in settings.review.backends_used():
        desks.append(LabelStudioDesk(settings) if backend == "label-studio" else ArgillaDesk(settings))
    return desks
