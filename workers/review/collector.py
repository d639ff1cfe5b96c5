"""The review collector (`hitl-workers run argilla-collector`, or `review-collector`): reviewers'
answers become ReviewResolutions on `hitl.review.resolved`.

It collects from every backend the settings send some task kind to. At start it asks each for its
notification receiver (Argilla: it registers its webhook, reusing one with the same URL, whose
secret it takes; Label Studio: a webhook on each project), serves them on one port, each at its
path, with uvicorn, and runs a reconciliation loop per backend beside them, until SIGTERM or
SIGINT. Each notification names an item, which that backend's `collecting.Resolver` resolves.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

import uvicorn

from workers.config import Settings
from workers.errors import DependencyUnavailable
from workers.extraction_validator.registry import ExtractionSchemas
from workers.logs import log
from workers.review.asgi import Receivers
from workers.review.backend import ReviewBackend
from workers.review.backends import used_backends
from workers.review.collecting import Reconciler, ResolutionEmitter, Resolver
from workers.review.corrections import correction_check
from workers.review.metrics import CollectorMetrics
from workers.stopping import stop_on_signals

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
        self.backends = [backend] if backend is not None else used_backends(settings, self.metrics)
        self.emitter = emitter or ResolutionEmitter(settings)
        schemas = ExtractionSchemas.from_modules(settings.extraction_validator.schema_modules)
        check = correction_check(schemas)
        self.resolvers = {b.name: Resolver(b, self.emitter, check) for b in self.backends}
        self.reconcilers = {
            b.name: Reconciler(b, self.resolvers[b.name], self.metrics) for b in self.backends
        }
        self._stop = threading.Event()
        self._server: uvicorn.Server | None = None

    @property
    def backend(self) -> ReviewBackend:
        """The first backend (the only one, unless task kinds go to different tools)."""
        return self.backends[0]

    @property
    def reconciler(self) -> Reconciler:
        return self.reconcilers[self.backend.name]

    @property
    def started(self) -> bool:
        return self._server is not None and self._server.started

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True

    def run(self) -> None:
        """Serves until `stop()` (or, in the main thread, SIGTERM/SIGINT)."""
        receivers = {}
        for backend in self.backends:
            app = backend.notifications(self._on_item_of(backend.name), self._stop)
            if app is None:
                self._close()
                return
            receivers[app.path] = app.receive
        config = uvicorn.Config(
            Receivers(receivers, self.metrics),
            host=self.bridge.collector_host,
            port=self.bridge.collector_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        reconciling = [
            threading.Thread(
                target=reconciler.loop,
                args=(self._stop, self.bridge.reconcile_interval_seconds),
                name=f"reconciler-{name}",
                daemon=True,
            )
            for name, reconciler in self.reconcilers.items()
        ]
        for thread in reconciling:
            thread.start()
        log(logger, "started", backends=[b.name for b in self.backends], paths=sorted(receivers))
        try:
            if not self._stop.is_set():
                self._server.run()
        finally:
            self._stop.set()
            for thread in reconciling:
                thread.join(timeout=60)
            self._close()
            log(logger, "stopped")

    def _close(self) -> None:
        self.emitter.close()
        for backend in self.backends:
            backend.close()

    def _on_item_of(self, backend_name: str) -> Callable[[str], Awaitable[int]]:
        async def on_item(ref: str) -> int:
            return await self.on_item(ref, backend_name)

        return on_item

    async def on_item(self, ref: str, backend_name: str | None = None) -> int:
        """Resolves the item a notification names; the status code the tool gets back."""
        resolver = self.resolvers[backend_name or self.backend.name]
        try:
            outcome = await asyncio.to_thread(resolver.resolve_item, ref)
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

    # uvicorn handles these while it serves, then hands them to the handlers found at start.
    stop_on_signals(logger, collector.stop)
    collector.run()
