"""The review collector (`hitl-workers run argilla-collector`): reviewers' answers become
ReviewResolutions on `hitl.review.resolved`.

At start it asks the backend for its notification receiver (for Argilla: it registers its webhook,
reusing one with the same URL, whose secret it takes), serves it with uvicorn, and runs the
reconciliation loop beside it, until SIGTERM or SIGINT. Each notification names an item, which
`collecting.Resolver` resolves.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType

import uvicorn

from workers.config import Settings
from workers.errors import DependencyUnavailable
from workers.extraction_validator.registry import ExtractionSchemas
from workers.logs import log
from workers.review.argilla.backend import ArgillaBackend
from workers.review.backend import ReviewBackend
from workers.review.collecting import Reconciler, ResolutionEmitter, Resolver
from workers.review.corrections import correction_check
from workers.review.metrics import CollectorMetrics

logger = logging.getLogger("hitl.review_collector")


class Collector:
    def __init__(
        self,
        settings: Settings,
        backend: ReviewBackend | None = None,
        emitter: ResolutionEmitter | None = None,
    ) -> None:
        self.settings = settings
        self.bridge = settings.argilla_bridge
        self.metrics = CollectorMetrics()
        self.backend = backend or ArgillaBackend(settings, metrics=self.metrics)
        self.emitter = emitter or ResolutionEmitter(settings)
        schemas = ExtractionSchemas.from_modules(settings.extraction_validator.schema_modules)
        self.resolver = Resolver(self.backend, self.emitter, correction_check(schemas))
        self.reconciler = Reconciler(self.backend, self.resolver, self.metrics)
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
        app = self.backend.notifications(self.on_item, self._stop)
        if app is None:
            self.emitter.close()
            return
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
        log(logger, "started", backend=self.backend.name, url=self.bridge.collector_public_url)
        try:
            if not self._stop.is_set():
                self._server.run()
        finally:
            self._stop.set()
            reconciling.join(timeout=60)
            self.emitter.close()
            self.backend.close()
            log(logger, "stopped")

    async def on_item(self, ref: str) -> int:
        """Resolves the item a notification names; the status code the tool gets back."""
        try:
            outcome = await asyncio.to_thread(self.resolver.resolve_item, ref)
        except DependencyUnavailable as error:
            log(logger, "event_postponed", logging.WARNING, item=ref, error=str(error)[:500])
            return 503
        except Exception as error:  # this item's fault: the tool must not retry it (a 500)
            log(logger, "event_failed", logging.WARNING, item=ref, error=repr(error)[:500])
            self.metrics.records.labels("error", "webhook").inc()
            return 200
        self.metrics.records.labels(outcome, "webhook").inc()
        log(logger, "event_handled", item=ref, outcome=outcome)
        return 200


def serve(settings: Settings) -> None:
    collector = Collector(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log(logger, "stopping", signal=signal.Signals(signum).name)
        collector.stop()

    # uvicorn handles these while it serves, then hands them to the handlers found at start.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    collector.run()
