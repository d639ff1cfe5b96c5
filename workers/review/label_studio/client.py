"""Every call the backend makes to Label Studio's REST API, and the one place its errors are translated.

- Label Studio unreachable, timing out, answering 5xx/408/429, or refusing our token (401/403: a
  deployment fault, not the data's) → DependencyUnavailable: the caller retries later.
- Any other 4xx → LabelStudioRejected, carrying Label Studio's message: the request's content is
  at fault. A 404 of a task or an annotation that is gone is the caller's to interpret.
- An answer that is not Label Studio's JSON (a proxy's HTML page, whatever its status) →
  DependencyUnavailable: what answered is not Label Studio.

Authentication is the token of a Label Studio user (`Authorization: Token ...`); the backend acts
as that user, who owns the projects it makes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from workers.config import Settings
from workers.errors import ConfigError, DependencyUnavailable, RejectedEvent
from workers.reasons import Reason

logger = logging.getLogger("hitl.label_studio")

PAGE_SIZE = 100
_RETRYABLE_STATUS = frozenset({401, 403, 408, 425, 429})


class LabelStudioRejected(RejectedEvent):
    """Label Studio refused a request for its content (a 4xx other than auth and throttling)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(Reason.LABEL_STUDIO_REJECTED, message)
        self.status_code = status_code


class LabelStudioClient:
    def __init__(self, settings: Settings) -> None:
        token = settings.label_studio_token.get_secret_value()
        if not token:
            raise ConfigError(
                "HITL_LABEL_STUDIO_TOKEN is not set: the Label Studio backend needs a user's token"
            )
        self.url = settings.label_studio_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=settings.label_studio.request_timeout_seconds,
        )
        logging.getLogger("httpx").setLevel(logging.WARNING)

    # -- projects --------------------------------------------------------------------------------

    def projects(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self._call(
                "GET", "/api/projects", "listing projects", params={"page": page, "page_size": PAGE_SIZE}
            )
            found.extend(answer.get("results") or [])
            if not answer.get("next"):
                return found
            page += 1

    def project(self, project_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/projects/{project_id}", f"reading project {project_id}"))

    def create_project(
        self, title: str, label_config: str, description: str, maximum_annotations: int
    ) -> dict[str, Any]:
        body = {
            "title": title,
            "description": description,
            "label_config": label_config,
            "maximum_annotations": maximum_annotations,
            "show_skip_button": True,
            "show_collab_predictions": True,
        }
        return dict(self._call("POST", "/api/projects", f"creating project {title}", json=body))

    def delete_project(self, project_id: int) -> None:
        self._call("DELETE", f"/api/projects/{project_id}", f"deleting project {project_id}")

    # -- tasks -----------------------------------------------------------------------------------

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> None:
        self._call(
            "POST",
            f"/api/projects/{project_id}/import",
            f"importing tasks into project {project_id}",
            json=list(tasks),
        )

    def task(self, task_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/tasks/{task_id}", f"reading task {task_id}"))

    def tasks(
        self, project_id: int, filters: Sequence[dict[str, Any]], conjunction: str = "or"
    ) -> Iterator[dict[str, Any]]:
        """The project's tasks matching Data Manager filters, with their annotations."""
        query = json.dumps({"filters": {"conjunction": conjunction, "items": list(filters)}})
        page = 1
        while True:
            params = {
                "project": project_id,
                "fields": "all",
                "query": query,
                "page": page,
                "page_size": PAGE_SIZE,
            }
            try:
                answer = self._call(
                    "GET", "/api/tasks", f"listing tasks of project {project_id}", params=params
                )
            except LabelStudioRejected as error:
                if error.status_code == 404:  # past the last page
                    return
                raise
            tasks = answer.get("tasks") or []
            yield from tasks
            if len(tasks) < PAGE_SIZE:
                return
            page += 1

    def update_task(self, task_id: int, **fields: Any) -> dict[str, Any]:
        """Replaces the named fields of the task (`data`, `meta`), each as a whole."""
        return dict(self._call("PATCH", f"/api/tasks/{task_id}", f"updating task {task_id}", json=fields))

    def convert_to_draft(self, annotation_id: int) -> None:
        self._call(
            "POST",
            f"/api/annotations/{annotation_id}/convert-to-draft",
            f"returning annotation {annotation_id}",
        )

    # -- webhooks --------------------------------------------------------------------------------

    def webhooks(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/webhooks/", "listing webhooks"))

    def create_webhook(
        self, project_id: int, url: str, headers: dict[str, str], actions: Sequence[str]
    ) -> dict[str, Any]:
        body = {
            "project": project_id,
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "headers": headers,
            "is_active": True,
            "actions": list(actions),
        }
        return dict(
            self._call(
                "POST", "/api/webhooks/", f"registering the webhook of project {project_id}", json=body
            )
        )

    def close(self) -> None:
        self._http.close()

    # -- the one place errors are translated -----------------------------------------------------

    def _call(self, method: str, path: str, doing: str, **request: Any) -> Any:
        try:
            response = self._http.request(method, path, **request)
        except httpx.TransportError as error:
            raise DependencyUnavailable(f"Label Studio unreachable while {doing}: {error!r}") from error
        if response.status_code == 204 or (
            method == "DELETE" and response.status_code < 300 and not response.content
        ):
            return None
        try:
            body = response.json()
        except ValueError:
            raise DependencyUnavailable(
                f"not Label Studio's answer ({response.status_code}) while {doing}: {response.text[:500]}"
            ) from None
        status = response.status_code
        if status < 300:
            return body
        detail = json.dumps(body, ensure_ascii=False)[:2000]
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise DependencyUnavailable(f"Label Studio answered {status} while {doing}: {detail}")
        raise LabelStudioRejected(f"Label Studio refused {doing} ({status}): {detail}", status)
