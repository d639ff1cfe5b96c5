"""argilla-collector: Argilla's answers become ReviewResolutions on `hitl.review.resolved`.

At start it registers its webhook with Argilla (reusing one with the same URL, whose secret it
takes), then serves the webhook receiver with uvicorn and runs the reconciliation loop beside it,
until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any
from urllib.parse import urlparse

import uvicorn

from workers.argilla_bridge.adapter import ArgillaAdapter
from workers.argilla_bridge.corrections import correction_check
from workers.argilla_bridge.emission import ResolutionEmitter
from workers.argilla_bridge.metrics import CollectorMetrics
from workers.argilla_bridge.reconciliation import Reconciler
from workers.argilla_bridge.resolver import Resolver
from workers.argilla_bridge.webhook_app import WebhookApp
from workers.config import Settings
from workers.errors import DependencyUnavailable
from workers.extraction_validator.registry import ExtractionSchemas
from workers.logs import log
from workers.runtime.backoff import Backoff

logger = logging.getLogger("hitl.argilla_collector")

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


class Collector:
    def __init__(
        self,
        settings: Settings,
        adapter: ArgillaAdapter | None = None,
        emitter: ResolutionEmitter | None = None,
    ) -> None:
        self.settings = settings
        self.bridge = settings.argilla_bridge
        self.adapter = adapter or ArgillaAdapter(settings)
        self.emitter = emitter or ResolutionEmitter(settings)
        schemas = ExtractionSchemas.from_modules(settings.extraction_validator.schema_modules)
        self.resolver = Resolver(self.adapter, self.emitter, correction_check(schemas))
        self.metrics = CollectorMetrics()
        self.reconciler = Reconciler(
            self.adapter, self.resolver, self.bridge.workspace, self.bridge.dataset_prefix, self.metrics
        )
        self.webhook: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._server: uvicorn.Server | None = None

    @property
    def started(self) -> bool:
        return self._server is not None and self._server.started

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True

    def run(self) -> None:
        """Serves until `stop()` (or, in the main thread, SIGTERM/SIGINT)."""
        self.webhook = self._register_webhook()
        if self.webhook is None:
            self.emitter.close()
            return
        app = WebhookApp(
            str(self.webhook["secret"]),
            urlparse(self.bridge.collector_public_url).path,
            self.on_event,
            self.metrics,
        )
        config = uvicorn.Config(
            app,
            host=self.bridge.collector_host,
            port=self.bridge.collector_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        reconciling = threading.Thread(
            target=self.reconciler.loop,
            args=(self._stop, self.bridge.reconcile_interval_seconds),
            name="reconciler",
            daemon=True,
        )
        reconciling.start()
        log(logger, "started", url=self.bridge.collector_public_url, webhook=str(self.webhook["id"]))
        try:
            if not self._stop.is_set():
                self._server.run()
        finally:
            self._stop.set()
            reconciling.join(timeout=60)
            self.emitter.close()
            self.adapter.close()
            log(logger, "stopped")

    def _register_webhook(self) -> dict[str, Any] | None:
        """Registers the webhook, retrying while Argilla is down; None if stopped meanwhile."""
        runtime = self.settings.runtime
        backoff = Backoff(runtime.retry_initial_seconds, runtime.retry_max_seconds)
        while not self._stop.is_set():
            try:
                return register_webhook(self.adapter, self.bridge.collector_public_url)
            except DependencyUnavailable as error:
                delay = backoff.next_delay(at_least=error.retry_after)
                log(
                    logger,
                    "waiting_for_argilla",
                    logging.WARNING,
                    retry_in_seconds=round(delay, 2),
                    error=str(error),
                )
                self._stop.wait(delay)
        return None

    async def on_event(self, payload: dict[str, Any]) -> int:
        try:
            record_id = self._record_to_resolve(payload)
        except (AttributeError, KeyError, TypeError) as error:
            log(logger, "event_unreadable", logging.WARNING, type=str(payload.get("type")), error=repr(error))
            return 400
        if record_id is None:
            return 200
        try:
            outcome = await asyncio.to_thread(self.resolver.resolve_record, record_id)
        except DependencyUnavailable as error:
            log(logger, "event_postponed", logging.WARNING, record=record_id, error=str(error)[:500])
            return 503
        except Exception as error:  # this record's fault: Argilla must not retry it (a 500)
            log(logger, "event_failed", logging.WARNING, record=record_id, error=repr(error)[:500])
            self.metrics.records.labels("error", "webhook").inc()
            return 200
        self.metrics.records.labels(outcome, "webhook").inc()
        log(logger, "event_handled", type=payload.get("type"), record=record_id, outcome=outcome)
        return 200

    def _record_to_resolve(self, payload: dict[str, Any]) -> str | None:
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
        if workspace != self.bridge.workspace or not str(dataset.get("name", "")).startswith(
            self.bridge.dataset_prefix + "-"
        ):
            return None
        return str(record["id"]) if record.get("id") else None


def serve(settings: Settings) -> None:
    collector = Collector(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log(logger, "stopping", signal=signal.Signals(signum).name)
        collector.stop()

    # uvicorn handles these while it serves, then hands them to the handlers found at start.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    collector.run()
