"""Every call the bridge makes to Argilla, and the one place its errors are translated.

- Argilla unreachable, timing out, answering 5xx/408/429, or refusing our API key (401/403: a
  deployment fault, not the data's) → DependencyUnavailable: the caller retries later.
- Any other 4xx → ArgillaRejected, carrying Argilla's message: the request's content is at fault.
- An answer that is not Argilla's JSON (an HTML error page from a proxy in front of it, whatever
  its status, or JSON of another shape) → DependencyUnavailable: what answered is not Argilla.
  Every body is parsed inside the translation, writes' answers too: a proxy's 200 page on a write
  means the write never reached Argilla.

Datasets and workspaces are created with the SDK (`rg.Settings` is the readable way to declare
them). Records, responses and webhooks go through the SDK's own HTTP client to the REST endpoints
the SDK itself calls: the bulk upsert endpoint directly, because the SDK's `records.log` converts
every returned record and draws a progress bar per batch, and because we need the raw error of a
batch to find the record at fault.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import argilla as rg
import httpx
import pydantic
from argilla._exceptions import ArgillaAPIError, ArgillaError

from workers.config import Settings
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.logs import log
from workers.reasons import Reason
from workers.review.argilla.layout import DatasetSpec
from workers.review.argilla.records import RecordItem

logger = logging.getLogger("hitl.argilla")

ARGILLA_REJECTED = Reason.ARGILLA_REJECTED
SEARCH_PAGE_SIZE = 500
TERMS_FILTER_MAX_VALUES = 250
"""Argilla refuses a terms filter with more values than this."""
DRAFT_WAIT_SECONDS = 15.0
"""How long a call waits for a dataset another publisher is creating to be published."""
DRAFT_ABANDONED_SECONDS = 120.0
"""A dataset seen as a draft for this long is a creation that crashed: it is deleted and made anew."""
_RETRYABLE_STATUS = frozenset({401, 403, 408, 425, 429})


class ArgillaRejected(RejectedEvent):
    """Argilla refused a request for its content (a 4xx other than auth and throttling)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(ARGILLA_REJECTED, message)
        self.status_code = status_code


def _from_status(
    status_code: int, detail: str, doing: str, from_argilla: bool = True
) -> DependencyUnavailable | ArgillaRejected:
    detail = detail[:2000]
    if status_code >= 500 or status_code in _RETRYABLE_STATUS:
        return DependencyUnavailable(f"Argilla answered {status_code} while {doing}: {detail}")
    if not from_argilla:
        return DependencyUnavailable(f"not Argilla's answer ({status_code}) while {doing}: {detail}")
    return ArgillaRejected(f"Argilla refused {doing} ({status_code}): {detail}", status_code)


def _is_json(response: httpx.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True


def _response_behind(error: BaseException) -> httpx.Response | None:
    """The HTTP answer an SDK error was made from, if any (the SDK raises inside its `except`)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, httpx.HTTPStatusError):
            return cause.response
        cause = cause.__cause__ or cause.__context__
    return None


@contextmanager
def translated_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPStatusError as error:
        # Argilla explains every refusal in JSON; a 4xx page of another kind is a proxy's.
        response = error.response
        raise _from_status(response.status_code, response.text, doing, _is_json(response)) from error
    except httpx.TransportError as error:
        raise DependencyUnavailable(f"Argilla unreachable while {doing}: {error!r}") from error
    except json.JSONDecodeError as error:
        # The SDK parsing an answer that is not Argilla's JSON (its own error handling parses 4xx too).
        raise DependencyUnavailable(f"not Argilla's answer while {doing}: {str(error)[:500]}") from error
    except ArgillaAPIError as error:
        behind = _response_behind(error)
        from_argilla = behind is None or _is_json(behind)
        raise _from_status(error.status_code, str(error), doing, from_argilla) from error
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
        self._drafts_seen: dict[UUID, float] = {}
        self._lock = threading.RLock()
        # Both log every request at INFO: one line per call would drown the workers' own logs.
        for name in ("httpx", "argilla.sdk"):
            logging.getLogger(name).setLevel(logging.WARNING)

    @property
    def client(self) -> rg.Argilla:
        with self._lock:
            if self._client is None:
                with translated_errors("connecting"):
                    try:
                        self._client = rg.Argilla(
                            api_url=self._api_url,
                            api_key=self._api_key.get_secret_value(),
                            timeout=self._timeout,
                            # The callers retry with backoff; the SDK's own retries would hide an outage.
                            retries=0,
                        )
                    except (TypeError, pydantic.ValidationError) as error:
                        # The SDK reads the current user at once: JSON of another shape is not Argilla.
                        raise DependencyUnavailable(
                            f"not Argilla's answer while connecting: {str(error)[:300]}"
                        ) from error
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
        """The dataset named by `spec` in `workspace`, created with its settings on first use.

        Several publishers may create it at once: Argilla lets one create it (409 for the others),
        the others wait for that one's draft to be published. A draft is deleted only when it has
        stayed a draft for DRAFT_ABANDONED_SECONDS (a creation that crashed); until then, a draft
        that is not published within DRAFT_WAIT_SECONDS is DependencyUnavailable (retry later).
        """
        key = (workspace, spec.name)
        with self._lock:
            known = self._datasets.get(key)
            if known is not None:
                return known
            workspace_id = self.ensure_workspace(workspace)
            found = self._ready_dataset(workspace, workspace_id, spec)
            dataset_id = UUID(found["id"])
            ref = DatasetRef(dataset_id, spec.name, self._question_ids(dataset_id))
            self._datasets[key] = ref
            return ref

    def _ready_dataset(self, workspace: str, workspace_id: UUID, spec: DatasetSpec) -> dict[str, Any]:
        deadline = time.monotonic() + DRAFT_WAIT_SECONDS
        created = False
        while True:
            found = self._find_dataset(workspace_id, spec.name)
            if found is not None and found.get("status") == "ready":
                self._wait_for_index(UUID(found["id"]), deadline)
                return found
            if found is None:
                if created:
                    raise DependencyUnavailable(f"dataset {spec.name!r} vanished while it was being created")
                created = True
                try:
                    self._create_dataset(workspace, spec)
                except DependencyUnavailable:
                    # Argilla answers a creation that loses the race with 409, or with 500 when both
                    # pass its name check at once (the unique constraint fires): either way, the
                    # winner's dataset is there and the next pass waits for it.
                    if self._find_dataset(workspace_id, spec.name) is None:
                        raise
                continue
            draft_id = UUID(found["id"])
            first_seen = self._drafts_seen.setdefault(draft_id, time.monotonic())
            if time.monotonic() - first_seen > DRAFT_ABANDONED_SECONDS:
                log(logger, "abandoned_dataset_deleted", logging.WARNING, dataset=spec.name, id=str(draft_id))
                self._delete_dataset(draft_id)
                self._drafts_seen.pop(draft_id, None)
                continue
            if time.monotonic() > deadline:
                raise DependencyUnavailable(
                    f"dataset {spec.name!r} is still being created by another publisher", retry_after=5.0
                )
            time.sleep(0.5)

    def _wait_for_index(self, dataset_id: UUID, deadline: float) -> None:
        """Returns once the dataset's records can be searched.

        Argilla marks a dataset ready before it creates its search index: a publisher that finds
        it in between would fail its first lookup (500, index not found).
        """
        while True:
            try:
                self._call(
                    "POST",
                    f"/api/v1/datasets/{dataset_id}/records/search",
                    f"probing the search index of dataset {dataset_id}",
                    params={"limit": 1},
                    json={},
                )
                return
            except DependencyUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _find_dataset(self, workspace_id: UUID, name: str) -> dict[str, Any] | None:
        for dataset in self.list_datasets(workspace_id):
            if dataset["name"] == name:
                return dataset
        return None

    def list_datasets(self, workspace_id: UUID) -> list[dict[str, Any]]:
        items = _items(self._call("GET", "/api/v1/me/datasets", "listing datasets"), "listing datasets")
        return [d for d in items if d.get("workspace_id") == str(workspace_id)]

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
        self._call("DELETE", f"/api/v1/datasets/{dataset_id}", f"deleting the abandoned dataset {dataset_id}")

    def _question_ids(self, dataset_id: UUID) -> dict[str, UUID]:
        doing = "listing questions"
        items = _items(self._call("GET", f"/api/v1/datasets/{dataset_id}/questions", doing), doing)
        return {question["name"]: UUID(question["id"]) for question in items}

    def dataset(self, dataset_id: UUID | str) -> dict[str, Any]:
        return _object(self._call("GET", f"/api/v1/datasets/{dataset_id}", f"getting dataset {dataset_id}"))

    def _call(self, method: str, url: str, doing: str, **request: Any) -> Any:
        """Argilla's answer to the request, parsed: every error, the body's included, translated once."""
        with translated_errors(doing):
            try:
                response = self.http.request(method, url, **request)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # A pooled keep-alive connection the server closed or reset as it was reused: a
                # read is safe to send once more, on a fresh connection; an outage still fails.
                if method != "GET":
                    raise
                response = self.http.request(method, url, **request)
            response.raise_for_status()
            if response.status_code == 204:
                return None
            try:
                return response.json()
            except ValueError as error:
                raise DependencyUnavailable(
                    f"not Argilla's answer ({response.status_code}, {response.headers.get('content-type')})"
                    f" while {doing}: {response.text[:300]!r}"
                ) from error

    # -- records ---------------------------------------------------------------------------------

    def upsert_records(self, dataset: DatasetRef, items: Sequence[RecordItem]) -> None:
        """Creates or updates the records (by external id) in one bulk request: all or none.

        Argilla 2.8 replaces an existing record's `fields` and `metadata`, each as a whole, when the
        item sets them, and keeps them when it leaves them out; suggestions are upserted by question.
        """
        body = {"items": [self._with_question_ids(dataset, item) for item in items]}
        try:
            self._call(
                "PUT",
                f"/api/v1/datasets/{dataset.id}/records/bulk",
                f"logging {len(items)} records to {dataset.name!r}",
                json=body,
            )
        except ArgillaRejected as error:
            if error.status_code != 404:
                raise
            with self._lock:
                self._datasets = {k: v for k, v in self._datasets.items() if v.id != dataset.id}
            raise DependencyUnavailable(
                f"dataset {dataset.name!r} ({dataset.id}) no longer exists"
            ) from error

    @staticmethod
    def _with_question_ids(dataset: DatasetRef, item: RecordItem) -> RecordItem:
        if "suggestions" not in item:
            return item
        suggestions = []
        for suggestion in item["suggestions"]:
            fields = {k: v for k, v in suggestion.items() if k != "question_name" and v is not None}
            fields["question_id"] = str(dataset.question_ids[suggestion["question_name"]])
            suggestions.append(fields)
        return {**item, "suggestions": suggestions}

    def records_by_external_id(
        self, dataset: DatasetRef, external_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The dataset's records among `external_ids`, by external id (Argilla reads them from its index,
        which it refreshes on every write)."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(external_ids))
        for start in range(0, len(unique), TERMS_FILTER_MAX_VALUES):
            chunk = unique[start : start + TERMS_FILTER_MAX_VALUES]
            scope = {"entity": "record", "property": "external_id"}
            records = self.search_records(dataset.id, [{"type": "terms", "scope": scope, "values": chunk}])
            found.update({str(record["external_id"]): record for record in records})
        return found

    def record(self, record_id: UUID | str) -> dict[str, Any]:
        """The record by its server id, with its responses."""
        return _object(self._call("GET", f"/api/v1/records/{record_id}", f"getting record {record_id}"))

    def search_records(self, dataset_id: UUID | str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every record of the dataset matching all the filters, with its responses."""
        found: list[dict[str, Any]] = []
        offset = 0
        doing = f"searching dataset {dataset_id}"
        while True:
            body = self._call(
                "POST",
                f"/api/v1/datasets/{dataset_id}/records/search",
                doing,
                params={"include": "responses", "offset": offset, "limit": SEARCH_PAGE_SIZE},
                json={"filters": {"and": filters}} if filters else {},
            )
            page = [_object(item.get("record")) for item in _items(body, doing)]
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
        self._call("PATCH", f"/api/v1/records/{record_id}", f"updating record {record_id}", json=body)

    def update_response(self, response_id: UUID | str, values: dict[str, Any], status: str) -> None:
        self._call(
            "PUT",
            f"/api/v1/responses/{response_id}",
            f"updating response {response_id}",
            json={"values": values, "status": status},
        )

    # -- webhooks --------------------------------------------------------------------------------

    def webhooks(self) -> list[dict[str, Any]]:
        return _items(self._call("GET", "/api/v1/webhooks", "listing webhooks"), "listing webhooks")

    def create_webhook(self, url: str, events: Sequence[str], description: str) -> dict[str, Any]:
        body = {"url": url, "events": list(events), "description": description}
        return _object(self._call("POST", "/api/v1/webhooks", f"creating a webhook for {url}", json=body))

    def update_webhook(self, webhook_id: str, events: Sequence[str]) -> dict[str, Any]:
        body = {"events": list(events), "enabled": True}
        doing = f"updating webhook {webhook_id}"
        return _object(self._call("PATCH", f"/api/v1/webhooks/{webhook_id}", doing, json=body))


def _object(body: Any, doing: str = "reading Argilla's answer") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise DependencyUnavailable(f"not Argilla's answer while {doing}: a JSON object was expected")
    return body


def _items(body: Any, doing: str) -> list[dict[str, Any]]:
    items = _object(body, doing).get("items")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise DependencyUnavailable(f"not Argilla's answer while {doing}: no list of items")
    return items
