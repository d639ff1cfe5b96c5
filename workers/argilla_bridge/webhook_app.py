"""The webhook receiver: a plain ASGI app that accepts only calls signed with the webhook's secret.

A call whose signature is missing, wrong, or older than the Standard Webhooks tolerance (five
minutes, against replays) gets 401 and reaches no handler. A verified event is passed to the
handler, whose status code is the answer: 2xx tells Argilla the event is taken, 503 asks it to
deliver the event again later. `/healthz` and `/metrics` (Prometheus) are served beside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from workers.argilla_bridge.metrics import CollectorMetrics
from workers.logs import log

logger = logging.getLogger("hitl.argilla_collector")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
EventHandler = Callable[[dict[str, Any]], Awaitable[int]]

MAX_BODY_BYTES = 16 * 1024 * 1024
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


class WebhookApp:
    def __init__(self, secret: str, path: str, handle: EventHandler, metrics: CollectorMetrics) -> None:
        self._verifier = Webhook(secret)
        self.path = path
        self._handle = handle
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == HEALTH_PATH and scope["method"] in ("GET", "HEAD"):
            await _respond(send, 200, {"status": "ok"})
            return
        if scope["path"] == METRICS_PATH and scope["method"] == "GET":
            await _send(send, 200, self._metrics.exposition(), CONTENT_TYPE_LATEST.encode())
            return
        if scope["path"] != self.path:
            await _respond(send, 404, {"error": "not found"})
            return
        if scope["method"] != "POST":
            await _respond(send, 405, {"error": "POST only"})
            return
        body = await _read_body(receive)
        if body is None:
            await _respond(send, 413, {"error": "body too large"})
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        try:
            payload = self._verifier.verify(body, headers)
        except WebhookVerificationError as error:
            log(logger, "webhook_rejected", logging.WARNING, reason=str(error), client=_client(scope))
            self._metrics.webhook_calls.labels("unauthorized").inc()
            await _respond(send, 401, {"error": "invalid signature"})
            return
        if not isinstance(payload, dict):
            await _respond(send, 400, {"error": "not a JSON object"})
            return
        status = await self._handle(payload)
        self._metrics.webhook_calls.labels("accepted" if status < 300 else "retry").inc()
        await _respond(send, status, {"status": "accepted" if status < 300 else "retry later"})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    await _send(send, status, json.dumps(body).encode(), b"application/json")


async def _send(send: Send, status: int, content: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(content)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": content})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
