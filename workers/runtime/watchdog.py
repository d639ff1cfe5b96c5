"""Makes a batch that runs too long visible before the consumer group evicts the worker.

A worker that does not poll within `max.poll.interval.ms` leaves its group: its partitions go to
another instance while it still writes. Long before that, `hitl_batch_in_progress_seconds` climbs,
`hitl_batch_stalled` turns 1 and a warning is logged, once per batch.
"""

from __future__ import annotations

import logging
import threading
import time

from workers.logs import log
from workers.runtime.metrics import WorkerMetrics

logger = logging.getLogger("hitl.runtime")


class BatchWatchdog:
    def __init__(self, metrics: WorkerMetrics, worker: str, stall_after_seconds: float) -> None:
        self._worker = worker
        self._stall_after = stall_after_seconds
        self._started: float | None = None
        self._warned = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stalled = metrics.batch_stalled.labels(worker)
        metrics.batch_in_progress_seconds.labels(worker).set_function(self.in_progress_seconds)
        self._stalled.set(0)
        self._thread = threading.Thread(target=self._watch, name=f"{worker}-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def batch_started(self) -> None:
        with self._lock:
            self._started = time.monotonic()
            self._warned = False

    def batch_finished(self) -> None:
        with self._lock:
            self._started = None
            self._stalled.set(0)

    def in_progress_seconds(self) -> float:
        started = self._started
        return 0.0 if started is None else time.monotonic() - started

    def _watch(self) -> None:
        interval = min(1.0, self._stall_after / 10)
        while not self._stop.wait(interval):
            with self._lock:
                elapsed = self.in_progress_seconds()
                if elapsed < self._stall_after or self._warned:
                    continue
                # Under the lock: a batch that finishes meanwhile cannot be left marked stalled.
                self._stalled.set(1)
                self._warned = True
            log(
                logger,
                "batch_stalled",
                logging.WARNING,
                worker=self._worker,
                in_progress_seconds=round(elapsed, 1),
                stall_after_seconds=round(self._stall_after, 1),
            )
