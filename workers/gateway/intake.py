"""A request body becomes validated events, or a RequestRejected saying which status and why.

The body is one event or a JSON array of them, in the JSON form the input topics accept. An
`event_id` (a new UUID) and an `occurred_at` (now, UTC) are filled in when absent. Every failing
field is reported, with its path in the body, as the codec reports them for dead letters.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from workers.contracts import Extraction, Feedback, Prediction
from workers.errors import HitlError

# The codec's own formatting of validation errors, so that a 422 reads like a dead letter's reason.
from workers.validation_errors import describe, field_path


class RequestRejected(HitlError):
    """The request cannot be taken: `status` is the HTTP answer, `detail` the body's details."""

    def __init__(self, status: int, message: str, detail: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or []


InputEvent = Feedback | Prediction | Extraction
InputEventType = type[Feedback] | type[Prediction] | type[Extraction]


@dataclass(frozen=True)
class Intake:
    events: list[InputEvent]
    single: bool
    """The body was one event, not an array."""


def is_json_media_type(content_type: str | None) -> bool:
    """True for application/json and application/*+json; a missing type is tried as JSON too."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in ("", "application/json") or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def read_limited(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, refused with 413 as soon as its declared or streamed size exceeds `limit`."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestRejected(400, f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise RequestRejected(413, f"the body is {size} bytes, above the limit of {limit}")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise RequestRejected(413, f"the body exceeds the limit of {limit} bytes")
    return bytes(body)


def parse_events(body: bytes, event_type: InputEventType, now: datetime | None = None) -> Intake:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestRejected(415, f"the body is not JSON: {error}") from error
    single = not isinstance(document, list)
    items: list[Any] = [document] if single else document
    if not items:
        raise RequestRejected(422, "an empty array: no events to take")
    stamp = (now or datetime.now(UTC)).isoformat()
    events: list[InputEvent] = []
    detail: list[dict[str, str]] = []
    summaries: list[str] = []
    for index, item in enumerate(items):
        prefix: tuple[int, ...] = () if single else (index,)
        if not isinstance(item, dict):
            detail.append({"path": _path(prefix), "message": "expected a JSON object"})
            summaries.append(f"{_path(prefix)}: expected a JSON object")
            continue
        try:
            events.append(event_type.model_validate(with_identity(item, stamp)))
        except ValidationError as error:
            for problem in error.errors(include_url=False, include_input=False):
                detail.append({"path": _path((*prefix, *problem["loc"])), "message": problem["msg"]})
            summaries.append(
                ("" if single else f"{_path(prefix)} ") + f"not a {error.title}: {describe(error)}"
            )
    if detail:
        raise RequestRejected(422, " | ".join(summaries), detail)
    return Intake(events, single)


def with_identity(item: dict[str, Any], stamp: str) -> dict[str, Any]:
    """The item with `event_id` and `occurred_at` filled in when absent (or null)."""
    filled = dict(item)
    if filled.get("event_id") is None:
        filled["event_id"] = str(uuid.uuid4())
    if filled.get("occurred_at") is None:
        filled["occurred_at"] = stamp
    return filled


def _path(location: tuple[int | str, ...]) -> str:
    return field_path(location) or "(value)"
