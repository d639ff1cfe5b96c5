"""The gateway's Prometheus metrics, on a registry of its own, served at /metrics of its HTTP port."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class GatewayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "hitl_gateway_requests",
            "HTTP requests answered, by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "hitl_gateway_request_seconds",
            "Time to answer a request, acknowledgement by the broker included",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "hitl_gateway_events_accepted",
            "Events acknowledged by the broker",
            ["topic"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
