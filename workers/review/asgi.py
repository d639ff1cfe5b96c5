"""The plain ASGI pieces the collector's receivers share: answers, bodies read within a limit,
lifespan, and one app serving several receivers by path beside /healthz and /metrics."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from workers.review.metrics import CollectorMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


async def respond(send: Send, status: int, body: dict[str, Any], close: bool = False) -> None:
    await send_body(send, status, json.dumps(body).encode(), b"application/json", close)


async def send_body(
    send: Send, status: int, content: bytes, content_type: bytes, close: bool = False
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(content)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The body, or None as soon as it grows beyond `max_bytes` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


@dataclass(frozen=True)
class Refusal:
    status: int
    answer: str
    """The short code for logs and metrics."""
    error: str
    close: bool = False


async def limited_body(headers: Mapping[str, str], receive: Receive, max_bytes: int) -> bytes | Refusal:
    """The body, or why it is refused: an unreadable Content-Length (400), or more than `max_bytes`
    declared or sent (413, refused before it is buffered whole)."""
    declared = headers.get("content-length", "0").strip()
    if not declared.isdigit():
        return Refusal(400, "bad_request", "unreadable Content-Length")
    body = None if int(declared) > max_bytes else await read_body(receive, max_bytes)
    if body is None:
        # Closing the connection is what stops the rest of the body: uvicorn would read it all.
        return Refusal(413, "too_large", "body too large", close=True)
    return body


def headers_of(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}


def client_of(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


class Receivers:
    """Serves each receiver at its path, /healthz and /metrics beside them, 404 elsewhere."""

    def __init__(self, receivers: Mapping[str, App], metrics: CollectorMetrics) -> None:
        self.receivers = dict(receivers)
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == HEALTH_PATH and scope["method"] in ("GET", "HEAD"):
            await respond(send, 200, {"status": "ok"})
            return
        if scope["path"] == METRICS_PATH and scope["method"] == "GET":
            await send_body(send, 200, self._metrics.exposition(), CONTENT_TYPE_LATEST.encode())
            return
        receiver = self.receivers.get(scope["path"])
        if receiver is None:
            await respond(send, 404, {"error": "not found"})
            return
        if scope["method"] != "POST":
            await respond(send, 405, {"error": "POST only"})
            return
        await receiver(scope, receive, send)
