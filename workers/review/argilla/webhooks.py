"""The webhook receiver: a plain ASGI app that accepts only calls signed with the webhook's secret.

Whatever a stranger sends, the answer is a 4xx and no handler sees it, never a 500:

- a body declared (Content-Length) or streamed beyond `max_body_bytes` → 413, refused before it
  is buffered whole;
- a signature missing, wrong, malformed (bad base64, no `v1,` prefix), a timestamp outside the
  Standard Webhooks tolerance (five minutes either way), or a body that is not UTF-8 → 401;
- a `webhook-id` already accepted within the tolerance window → 401: a captured call replayed.
  Argilla gives every delivery, retries included, an id of its own, so no genuine call is refused.

A verified event is passed to the handler, whose status code is the answer: 2xx tells Argilla the
event is taken, 503 asks it to deliver the event again later. `/healthz` and `/metrics`
(Prometheus) are served beside it. The secret is checked when the app is made: a missing or
unusable one is a ConfigError at start.
"""

from __future__ import annotations

import binascii
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

from workers.config import ArgillaBridgeSettings
from workers.errors import ConfigError
from workers.logs import log
from workers.review.argilla.client import ArgillaAdapter
from workers.review.asgi import (
    Receive,
    Receivers,
    Refusal,
    Scope,
    Send,
    client_of,
    headers_of,
    limited_body,
    respond,
)
from workers.review.metrics import CollectorMetrics

logger = logging.getLogger("hitl.argilla_collector")

EventHandler = Callable[[dict[str, Any]], Awaitable[int]]

MAX_BODY_BYTES = 16 * 1024 * 1024
TOLERANCE_SECONDS = 5 * 60
"""Standard Webhooks' timestamp tolerance, either way: older or newer calls fail verification."""
MAX_SEEN_IDS = 100_000


def _verifier(secret: str | None) -> Webhook:
    # `str(None)` is how a secret missing from Argilla's answer would arrive: refuse it as missing.
    if not isinstance(secret, str) or secret.strip() in ("", "None", "whsec_"):
        raise ConfigError(
            f"the webhook secret is missing (got {secret!r}): the collector cannot verify calls"
        )
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError, RuntimeError) as error:
        raise ConfigError(f"the webhook secret is not a Standard Webhooks secret: {error}") from error


class SeenMessageIds:
    """The ids of the messages accepted within the tolerance window, at most `capacity` of them.

    An id is kept until its message's timestamp leaves the tolerance window: from then on the
    signature check refuses the message anyway.
    """

    def __init__(self, capacity: int = MAX_SEEN_IDS, clock: Callable[[], float] = time.time) -> None:
        self._expiries: OrderedDict[str, float] = OrderedDict()
        self._capacity = capacity
        self._clock = clock

    def add(self, message_id: str, timestamp: float) -> bool:
        """Records the id; False when it is already there (a replay)."""
        now = self._clock()
        while self._expiries and next(iter(self._expiries.values())) < now:
            self._expiries.popitem(last=False)
        if self._expiries.get(message_id, 0.0) >= now:
            return False
        self._expiries[message_id] = timestamp + TOLERANCE_SECONDS + 1
        self._expiries.move_to_end(message_id)
        if len(self._expiries) > self._capacity:
            self._expiries.popitem(last=False)
        return True

    def discard(self, message_id: str) -> None:
        self._expiries.pop(message_id, None)


class WebhookApp:
    def __init__(
        self,
        secret: str | None,
        path: str,
        handle: EventHandler,
        metrics: CollectorMetrics,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._verifier = _verifier(secret)
        self.path = path
        self._handle = handle
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._seen = SeenMessageIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Served alone: /healthz, /metrics and the webhook at its path."""
        await Receivers({self.path: self.receive}, self._metrics)(scope, receive, send)

    async def receive(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One POST to the webhook's path."""
        await self._webhook(scope, receive, send)

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = headers_of(scope)
        body = await limited_body(headers, receive, self._max_body_bytes)
        if isinstance(body, Refusal):
            await self._refuse(send, scope, body.status, body.answer, body.error, close=body.close)
            return
        text, rejection = self._verified(body, headers)
        if text is None:
            await self._refuse(send, scope, 401, "unauthorized", "invalid signature", rejection)
            return
        message_id = headers["webhook-id"]
        if not self._seen.add(message_id, float(headers["webhook-timestamp"])):
            await self._refuse(send, scope, 401, "replayed", "message already received")
            return
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            await self._refuse(send, scope, 400, "bad_request", "not a JSON object")
            return
        status = 500
        try:
            status = await self._handle(payload)
        finally:
            if status >= 300:
                # Not taken: a delivery of the same message may come back.
                self._seen.discard(message_id)
        self._metrics.webhook_calls.labels("accepted" if status < 300 else "retry").inc()
        await respond(send, status, {"status": "accepted" if status < 300 else "retry later"})

    def _verified(self, body: bytes, headers: dict[str, str]) -> tuple[str | None, str | None]:
        """(the body as text, None) if the headers sign it, else (None, why), however malformed."""
        try:
            text = body.decode("utf-8")
            self._verifier.verify(text, headers, json_parse=False)
        except (WebhookVerificationError, ValueError) as error:
            # ValueError covers what the library lets through: bad base64 (binascii.Error), a
            # signature without its "v1," prefix, a body that is not UTF-8 (UnicodeDecodeError).
            return None, f"{type(error).__name__}: {error}"[:300]
        return text, None

    async def _refuse(
        self,
        send: Send,
        scope: Scope,
        status: int,
        answer: str,
        error: str,
        reason: str | None = None,
        close: bool = False,
    ) -> None:
        log(
            logger, "webhook_rejected", logging.WARNING, answer=answer, reason=reason, client=client_of(scope)
        )
        self._metrics.webhook_calls.labels(answer).inc()
        await respond(send, status, {"error": error}, close)


# -- what the collector asks Argilla to send, and which events it acts on ---------------------------

WEBHOOK_EVENTS = ("record.completed", "response.created", "response.updated")
WEBHOOK_DESCRIPTION = "hitl-workers argilla-collector"
_RESPONSE_STATUSES_TO_RESOLVE = frozenset({"submitted", "discarded"})


def register_webhook(adapter: ArgillaAdapter, url: str) -> dict[str, Any]:
    """The webhook Argilla calls at `url`: the existing one, updated if need be, or a new one."""
    for webhook in adapter.webhooks():
        if webhook["url"] == url:
            if sorted(webhook["events"]) != sorted(WEBHOOK_EVENTS) or not webhook.get("enabled", True):
                webhook = adapter.update_webhook(str(webhook["id"]), WEBHOOK_EVENTS)
            return webhook
    return adapter.create_webhook(url, WEBHOOK_EVENTS, WEBHOOK_DESCRIPTION)


def record_to_resolve(payload: dict[str, Any], bridge: ArgillaBridgeSettings) -> str | None:
    """The id of the record the event may resolve, if it is one of this bridge's records."""
    event_type = payload.get("type")
    data = payload.get("data") or {}
    if event_type == "record.completed":
        record = data
    elif event_type in ("response.created", "response.updated"):
        if data.get("status") not in _RESPONSE_STATUSES_TO_RESOLVE:
            return None
        record = data.get("record") or {}
    else:
        return None
    dataset = record.get("dataset") or {}
    workspace = (dataset.get("workspace") or {}).get("name")
    if workspace != bridge.workspace or not str(dataset.get("name", "")).startswith(
        bridge.dataset_prefix + "-"
    ):
        return None
    return str(record["id"]) if record.get("id") else None
