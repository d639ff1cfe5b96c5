"""Every call the bridge makes to Argilla, and the one place its errors are translated.

- Argilla unreachable, timing out, answering 5xx/408/429, or refusing our API key (401/403: a
  deployment fault, not the data's) → DependencyUnavailable: the caller retries later.
- Any other 4xx → ArgillaRejected, carrying Argilla's message: the request's content is at fault.

Datasets and workspaces are created with the SDK (`rg.Settings` is the readable way to declare
them). Records, responses and webhooks go through the SDK's own HTTP client to the REST endpoints
the SDK itself calls: the bulk upsert endpoint directly, because the SDK's `records.log` converts
every returned record and draws a progress bar per batch, and because we need the raw error of a
batch to find the record at fault.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import argilla as rg
import httpx
from argilla._exceptions import ArgillaAPIError, ArgillaError

from workers.argilla_bridge.datasets import DatasetSpec
from workers.argilla_bridge.records import RecordItem
from workers.config import Settings
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.logs import log
from workers.reasons import Reason

logger = logging.getLogger("hitl.argilla")

ARGILLA_REJECTED = Reason.ARGILLA_REJECTED
SEARCH_PAGE_SIZE = 500
_RETRYABLE_STATUS = frozenset({401, 403, 408, 425, 429})


class ArgillaRejected(RejectedEvent):
    """Argilla refused a request for its content (a 4xx other than auth and throttling)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(ARGILLA_REJECTED, message)
        self.status_code = status_code


def _from_status(status_code: int, detail: str, doing: str) -> DependencyUnavailable | ArgillaRejected:
    detail = detail[:2000]
    if status_code >= 500 or status_code in _RETRYABLE_STATUS:
        return DependencyUnavailable(f"Argilla answered {status_code} while {doing}: {detail}")
    return ArgillaRejected(f"Argilla refused {doing} ({status_code}): {detail}", status_code)


@contextmanager
def translated_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPStatusError as error:
        raise _from_status(error.response.status_code, error.response.text, doing) from error
    except httpx.TransportError as error:
        raise DependencyUnavailable(f"Argilla unreachable while {doing}: {error!r}") from error
    except ArgillaAPIError as error:
        raise _from_status(error.status_code, str(error), doing) from error
    except ArgillaError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, httpx.TransportError):
            raise DependencyUnavailable(f"Argilla unreachable while {doing}: {cause!r}") from error
        raise ArgillaRejected(f"Argilla SDK refused {doing}: {error}") from error


@dataclass(frozen=True)
class DatasetRef:
    id: UUID
    name: str
    question_ids: dict[str, UUID]


class ArgillaAdapter:
    """Argilla for the bridge. It connects on first use, so a worker starts while Argilla is down."""

    def __init__(self, settings: Settings, timeout: int = 30) -> None:
        self._api_url = settings.argilla_api_url
        self._api_key = settings.argilla_api_key
        self._timeout = timeout
        self._client: rg.Argilla | None = None
        self._datasets: dict[tuple[str, str], DatasetRef] = {}
        self._workspaces: dict[str, UUID] = {}
        self._lock = threading.RLock()
        # Both log every request at INFO: one line per call would drown the workers' own logs.
        for name in ("httpx", "argilla.sdk"):
            logging.getLogger(name).setLevel(logging.WARNING)

    @property
    def client(self) -> rg.Argilla:
        with self._lock:
            if self._client is None:
                with translated_errors("connecting"):
                    self._client = rg.Argilla(
                        api_url=self._api_url,
                        api_key=self._api_key.get_secret_value(),
                        timeout=self._timeout,
                        # The callers retry with backoff; the SDK's own retries would hide an outage.
                        retries=0,
                    )
            return self._client

    @property
    def http(self) -> httpx.Client:
        client: httpx.Client = self.client.http_client
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.http_client.close()

    # -- workspaces and datasets -----------------------------------------------------------------

    def ensure_workspace(self, name: str) -> UUID:
        known = self._workspaces.get(name)
        if known is not None:
            return known
        with translated_errors(f"getting workspace {name!r}"), warnings.catch_warnings():
            # The SDK warns when a workspace is not found; here that only means "create it".
            warnings.simplefilter("ignore")
            workspace = self.client.workspaces(name=name)
            if workspace is None:
                try:
                    workspace = rg.Workspace(name=name, client=self.client).create()
                    log(logger, "workspace_created", workspace=name)
                except ArgillaAPIError as error:
                    if error.status_code != 409:
                        raise
                    workspace = self.client.workspaces(name=name)
        if workspace is None or workspace.id is None:
            raise DependencyUnavailable(f"workspace {name!r} vanished while it was being created")
        workspace_id = UUID(str(workspace.id))
        self._workspaces[name] = workspace_id
        return workspace_id

    def ensure_dataset(self, workspace: str, spec: DatasetSpec) -> DatasetRef:
        """The dataset named by `spec` in `workspace`, created with its settings on first use."""
        key = (workspace, spec.name)
        with self._lock:
            known = self._datasets.get(key)
            if known is not None:
                return known
            workspace_id = self.ensure_workspace(workspace)
            found = self._find_dataset(workspace_id, spec.name)
            if found is None or found.get("status") != "ready":
                if found is not None:
                    # A dataset left half-created (a crash between create and publish) has no records.
                    self._delete_dataset(UUID(found["id"]))
                self._create_dataset(workspace, spec)
                found = self._find_dataset(workspace_id, spec.name)
            if found is None:
                raise DependencyUnavailable(f"dataset {spec.name!r} is missing right after its creation")
            ref = DatasetRef(UUID(found["id"]), spec.name, self._question_ids(UUID(found["id"])))
            self._datasets[key] = ref
            return ref

    def _find_dataset(self, workspace_id: UUID, name: str) -> dict[str, Any] | None:
        for dataset in self.list_datasets(workspace_id):
            if dataset["name"] == name:
                return dataset
        return None

    def list_datasets(self, workspace_id: UUID) -> list[dict[str, Any]]:
        with translated_errors("listing datasets"):
            response = self.http.get("/api/v1/me/datasets")
            response.raise_for_status()
        return [d for d in response.json()["items"] if d["workspace_id"] == str(workspace_id)]

    def _create_dataset(self, workspace: str, spec: DatasetSpec) -> None:
        with translated_errors(f"creating dataset {spec.name!r}"):
            try:
                rg.Dataset(
                    name=spec.name, workspace=workspace, settings=spec.settings, client=self.client
                ).create()
                log(logger, "dataset_created", workspace=workspace, dataset=spec.name)
            except ArgillaAPIError as error:
                # Another publisher created it first.
                if error.status_code != 409:
                    raise

    def _delete_dataset(self, dataset_id: UUID) -> None:
        with translated_errors(f"deleting the unfinished dataset {dataset_id}"):
            self.http.delete(f"/api/v1/datasets/{dataset_id}").raise_for_status()

    def _question_ids(self, dataset_id: UUID) -> dict[str, UUID]:
        with translated_errors("listing questions"):
            response = self.http.get(f"/api/v1/datasets/{dataset_id}/questions")
            response.raise_for_status()
        return {question["name"]: UUID(question["id"]) for question in response.json()["items"]}

    def dataset(self, dataset_id: UUID | str) -> dict[str, Any]:
        with translated_errors(f"getting dataset {dataset_id}"):
            response = self.http.get(f"/api/v1/datasets/{dataset_id}")
            response.raise_for_status()
        return dict(response.json())

    # -- records ---------------------------------------------------------------------------------

    def upsert_records(self, dataset: DatasetRef, items: Sequence[RecordItem]) -> None:
        """Creates or updates the records (by external id) in one bulk request: all or none."""
        body = {"items": [self._with_question_ids(dataset, item) for item in items]}
        with translated_errors(f"logging {len(items)} records to {dataset.name!r}"):
            response = self.http.put(f"/api/v1/datasets/{dataset.id}/records/bulk", json=body)
            if response.status_code == 404:
                with self._lock:
                    self._datasets = {k: v for k, v in self._datasets.items() if v.id != dataset.id}
                raise DependencyUnavailable(f"dataset {dataset.name!r} ({dataset.id}) no longer exists")
            response.raise_for_status()

    @staticmethod
    def _with_question_ids(dataset: DatasetRef, item: RecordItem) -> RecordItem:
        suggestions = []
        for suggestion in item.get("suggestions", []):
            fields = {k: v for k, v in suggestion.items() if k != "question_name" and v is not None}
            fields["question_id"] = str(dataset.question_ids[suggestion["question_name"]])
            suggestions.append(fields)
        return {**item, "suggestions": suggestions}

    def record(self, record_id: UUID | str) -> dict[str, Any]:
        """The record by its server id, with its responses."""
        with translated_errors(f"getting record {record_id}"):
            response = self.http.get(f"/api/v1/records/{record_id}")
            response.raise_for_status()
        return dict(response.json())

    def search_records(self, dataset_id: UUID | str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every record of the dataset matching all the filters, with its responses."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            with translated_errors(f"searching dataset {dataset_id}"):
                response = self.http.post(
                    f"/api/v1/datasets/{dataset_id}/records/search",
                    params={"include": "responses", "offset": offset, "limit": SEARCH_PAGE_SIZE},
                    json={"filters": {"and": filters}} if filters else {},
                )
                response.raise_for_status()
            page = [item["record"] for item in response.json()["items"]]
            found.extend(page)
            offset += len(page)
            if len(page) < SEARCH_PAGE_SIZE:
                return found

    def update_record(
        self,
        record_id: UUID | str,
        *,
        fields: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Replaces the record's fields and/or its metadata (each as a whole)."""
        body: dict[str, Any] = {}
        if fields is not None:
            body["fields"] = fields
        if metadata is not None:
            body["metadata"] = metadata
        with translated_errors(f"updating record {record_id}"):
            self.http.patch(f"/api/v1/records/{record_id}", json=body).raise_for_status()

    def update_response(self, response_id: UUID | str, values: dict[str, Any], status: str) -> None:
        with translated_errors(f"updating response {response_id}"):
            response = self.http.put(
                f"/api/v1/responses/{response_id}", json={"values": values, "status": status}
            )
            response.raise_for_status()

    # -- webhooks --------------------------------------------------------------------------------

    def webhooks(self) -> list[dict[str, Any]]:
        with translated_errors("listing webhooks"):
            response = self.http.get("/api/v1/webhooks")
            response.raise_for_status()
        return list(response.json()["items"])

    def create_webhook(self, url: str, events: Sequence[str], description: str) -> dict[str, Any]:
        with translated_errors(f"creating a webhook for {url}"):
            response = self.http.post(
                "/api/v1/webhooks", json={"url": url, "events": list(events), "description": description}
            )
            response.raise_for_status()
        return dict(response.json())

    def update_webhook(self, webhook_id: str, events: Sequence[str]) -> dict[str, Any]:
        with translated_errors(f"updating webhook {webhook_id}"):
            response = self.http.patch(
                f"/api/v1/webhooks/{webhook_id}", json={"events": list(events), "enabled": True}
            )
            response.raise_for_status()
        return dict(response.json())

    def delete_webhook(self, webhook_id: str) -> None:
        with translated_errors(f"deleting webhook {webhook_id}"):
            self.http.delete(f"/api/v1/webhooks/{webhook_id}").raise_for_status()
