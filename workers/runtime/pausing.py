"""Pausing consumption while a dependency is down, and resuming when the backoff says so.

A batch that could not be finished is rewound to its first message on each partition, every
assigned partition is paused (also those assigned while paused), and consumption resumes after
an exponential backoff with full jitter; a finished batch resets the backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from confluent_kafka import Consumer, TopicPartition

from workers.errors import DependencyUnavailable
from workers.logs import log
from workers.runtime.backoff import Backoff
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.offsets import first_offsets
from workers.runtime.worker import Origin

logger = logging.getLogger("hitl.runtime")


class Pause:
    def __init__(self, worker: str, backoff: Backoff, metrics: WorkerMetrics) -> None:
        self._worker = worker
        self._backoff = backoff
        self._metrics = metrics
        self._until: float | None = None

    @property
    def paused(self) -> bool:
        """True from a failed batch until consumption resumes."""
        return self._until is not None

    def retry_later(self, consumer: Consumer, unfinished: Sequence[Origin], error: Exception) -> None:
        """Rewinds every partition to its first unfinished message and pauses consumption."""
        for partition in first_offsets(unfinished):
            consumer.seek(partition)
        retry_after = error.retry_after if isinstance(error, DependencyUnavailable) else None
        delay = self._backoff.next_delay(at_least=retry_after)
        self._until = time.monotonic() + delay
        consumer.pause(consumer.assignment())
        reason = "DependencyUnavailable" if isinstance(error, DependencyUnavailable) else type(error).__name__
        self._metrics.retries.labels(self._worker, reason).inc()
        self._metrics.paused.labels(self._worker).set(1)
        log(
            logger,
            "paused_for_retry",
            logging.WARNING,
            worker=self._worker,
            retry_in_seconds=round(delay, 2),
            attempt=self._backoff.attempts,
            error=str(error)[:500],
        )

    def resume_when_due(self, consumer: Consumer) -> None:
        if self._until is None or time.monotonic() < self._until:
            return
        self._until = None
        consumer.resume(consumer.assignment())
        self._metrics.paused.labels(self._worker).set(0)
        log(logger, "resumed", worker=self._worker)

    def succeeded(self) -> None:
        self._backoff.reset()

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._until is not None:
            consumer.pause(partitions)
