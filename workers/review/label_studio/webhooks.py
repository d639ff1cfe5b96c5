"""Label Studio's webhooks: one per project, calling the collector with a shared secret header.

Label Studio sends a webhook once, unsigned, with a 1 s timeout, from inside the annotator's own
request. So the receiver answers at once: it checks the secret header (in constant time), reads
which tasks the event concerns, answers 200 and resolves them in the background. A call it loses
(the collector down, the timeout) is found by the reconciliation, which is the source of truth.

Whatever a stranger sends gets a 4xx and reaches no handler: a missing or wrong secret → 401, a
body beyond the limit → 413, a body that is not a JSON object → 400.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from workers.errors import ConfigError
from workers.logs import log
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
from workers.review.label_studio.client import LabelStudioClient
from workers.review.metrics import CollectorMetrics

logger = logging.getLogger("hitl.label_studio")

SECRET_HEADER = "X-Hitl-Webhook-Secret"
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED")
MAX_BODY_BYTES = 16 * 1024 * 1024

TaskHandler = Callable[[str], Awaitable[int]]


def existing_secret(client: LabelStudioClient, url: str) -> str | None:
    """The secret of the webhooks already calling `url`, if any."""
    for webhook in client.webhooks():
        if webhook.get("url") == url:
            secret = (webhook.get("headers") or {}).get(SECRET_HEADER)
            if isinstance(secret, str) and secret:
                return secret
    return None


def webhook_secret(client: LabelStudioClient, url: str) -> str:
    """The secret of the webhooks already calling `url`, or a new one."""
    return existing_secret(client, url) or secrets.token_urlsafe(32)


def ensure_webhooks(client: LabelStudioClient, url: str, secret: str, project_ids: Iterable[int]) -> int:
    """Registers the webhook on each project that lacks it; how many it registered."""
    covered = {
        int(webhook["project"])
        for webhook in client.webhooks()
        if webhook.get("url") == url
        and webhook.get("project") is not None
        and (webhook.get("headers") or {}).get(SECRET_HEADER) == secret
        and webhook.get("is_active", True)
    }
    made = 0
    for project_id in project_ids:
        if project_id not in covered:
            client.create_webhook(project_id, url, {SECRET_HEADER: secret}, WEBHOOK_ACTIONS)
            made += 1
    return made


def tasks_of(payload: dict[str, Any]) -> list[str]:
    """The ids of the tasks an annotation event concerns."""
    if payload.get("action") not in WEBHOOK_ACTIONS:
        return []
    found: list[str] = []
    for key in ("task", "annotation"):
        value = payload.get(key)
        for entry in value if isinstance(value, list) else [value]:
            if not isinstance(entry, dict):
                continue
            task = entry.get("id") if key == "task" else entry.get("task")
            if isinstance(task, dict):
                task = task.get("id")
            if isinstance(task, int) and not isinstance(task, bool):
                found.append(str(task))
    return list(dict.fromkeys(found))


class LabelStudioWebhookApp:
    def __init__(
        self,
        secret: str,
        path: str,
        on_task: TaskHandler,
        in_scope: Callable[[dict[str, Any]], bool],
        metrics: CollectorMetrics,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if not secret:
            raise ConfigError("the Label Studio webhook secret is empty: the collector cannot check calls")
        self._secret = secret.encode()
        self.path = path
        self._on_task = on_task
        self._in_scope = in_scope
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._pending: set[asyncio.Task[int]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Served alone: /healthz, /metrics and the webhook at its path."""
        await Receivers({self.path: self.receive}, self._metrics)(scope, receive, send)

    async def receive(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = headers_of(scope)
        given = headers.get(SECRET_HEADER.lower(), "").encode("latin-1")
        if not hmac.compare_digest(given, self._secret):
            await self._refuse(send, scope, 401, "unauthorized", "missing or wrong secret")
            return
        body = await limited_body(headers, receive, self._max_body_bytes)
        if isinstance(body, Refusal):
            await self._refuse(send, scope, body.status, body.answer, body.error, close=body.close)
            return
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            await self._refuse(send, scope, 400, "bad_request", "not a JSON object")
            return
        tasks = tasks_of(payload) if self._in_scope(payload) else []
        for task_id in tasks:
            pending = asyncio.create_task(self._resolve(task_id))
            self._pending.add(pending)
            pending.add_done_callback(self._pending.discard)
        self._metrics.webhook_calls.labels("accepted").inc()
        await respond(send, 200, {"status": "accepted", "tasks": len(tasks)})

    async def _resolve(self, task_id: str) -> int:
        return await self._on_task(task_id)

    async def _refuse(
        self, send: Send, scope: Scope, status: int, answer: str, error: str, close: bool = False
    ) -> None:
        log(logger, "webhook_rejected", logging.WARNING, answer=answer, client=client_of(scope))
        self._metrics.webhook_calls.labels(answer).inc()
        await respond(send, status, {"error": error}, close)
