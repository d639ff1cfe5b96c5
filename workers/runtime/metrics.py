"""The Prometheus metrics every worker serves, on a registry of its own."""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from workers.errors import ConfigError

LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
AGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600, 86400)


@dataclass
class WorkerMetrics:
    worker: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        labels = ["worker", "topic"]
        self.consumed = Counter(
            "hitl_events_consumed", "Messages read from the input topic", labels, registry=self.registry
        )
        self.produced = Counter(
            "hitl_events_produced",
            "Events produced and acknowledged by the broker",
            labels,
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "hitl_dead_letters",
            "Messages sent to the dead-letter topic",
            [*labels, "reason"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "hitl_handler_seconds",
            "Time to decode and handle one message",
            ["worker"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sink_seconds = Histogram(
            "hitl_sink_seconds",
            "Time to write one batch to the worker's sink",
            ["worker"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.event_age_seconds = Histogram(
            "hitl_event_age_seconds",
            "Age of the input event when its outputs are acknowledged",
            ["worker"],
            buckets=AGE_BUCKETS,
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "hitl_consumer_lag",
            "Messages behind the end of each input partition",
            [*labels, "partition"],
            registry=self.registry,
        )
        self.retries = Counter(
            "hitl_retries", "Retries after a dependency failure", ["worker", "reason"], registry=self.registry
        )
        self.paused = Gauge(
            "hitl_paused", "1 while consumption is paused for a retry", ["worker"], registry=self.registry
        )
        self.batch_in_progress_seconds = Gauge(
            "hitl_batch_in_progress_seconds",
            "How long the batch in hand has been processed; 0 between batches",
            ["worker"],
            registry=self.registry,
        )
        self.batch_stalled = Gauge(
            "hitl_batch_stalled",
            "1 while the batch in hand has run longer than a share of max.poll.interval.ms",
            ["worker"],
            registry=self.registry,
        )
        self.fast_path_fallbacks = Counter(
            "hitl_fast_path_fallbacks",
            "Messages the worker's fast path left to its reference path (unusual input, or a fast "
            "handler that fails: each costs the reference path's time)",
            ["worker"],
            registry=self.registry,
        )
        self.producer_replaced = Counter(
            "hitl_producer_replaced",
            "Producers replaced after a fatal error or a failed transaction abort",
            ["worker"],
            registry=self.registry,
        )
        self.consumer_replaced = Counter(
            "hitl_consumer_replaced",
            "Consumers replaced after going without an assignment for the rejoin timeout once their"
            " partitions were lost",
            ["worker"],
            registry=self.registry,
        )

    def serve(self, port: int, setting: str = "HITL_METRICS_PORT") -> int:
        """Serves /metrics over HTTP; returns the port (useful when `port` is 0).

        A port that is taken is a ConfigError naming `setting`, the variable that chooses it."""
        try:
            server, _thread = start_http_server(port, addr="0.0.0.0", registry=self.registry)
        except OSError as error:
            raise ConfigError(
                f"{setting}={port}: cannot serve metrics there ({error.strerror}); "
                f"set {setting} to a free port (0 picks one)"
            ) from error
        return int(server.server_port)

    def record_statistics(self, statistics_json: str) -> None:
        """Consumer lag from librdkafka's statistics callback."""
        statistics: dict[str, Any] = json.loads(statistics_json)
        for topic, topic_stats in statistics.get("topics", {}).items():
            for partition, partition_stats in topic_stats.get("partitions", {}).items():
                lag = partition_stats.get("consumer_lag", -1)
                if partition == "-1" or lag < 0:
                    continue
                self.consumer_lag.labels(self.worker, topic, partition).set(lag)


def observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """`histogram.observe(amount)` for every amount, as one update per bucket rather than one per
    amount: the runtime records its per-message histograms once per batch.

    Reads the labelled histogram's buckets, which prometheus_client keeps private; a version that
    keeps them elsewhere gets the plain loop."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for amount in amounts:
            histogram.observe(amount)
        return
    if not amounts:
        return
    counts = [0] * len(bounds)
    for amount in amounts:
        # The first bucket whose upper bound is >= amount, as observe() picks it.
        counts[bisect_left(bounds, amount)] += 1
    total.inc(sum(amounts))
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)
