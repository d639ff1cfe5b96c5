"""The collector's Prometheus metrics, on a registry of its own, served at /metrics by its webhook app."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, generate_latest


@dataclass
class CollectorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.webhook_calls = Counter(
            "hitl_argilla_webhook_calls",
            "Webhook calls received, by answer (accepted, unauthorized, retry)",
            ["answer"],
            registry=self.registry,
        )
        self.records = Counter(
            "hitl_argilla_records",
            "Records looked at, by what became of them (emitted, sent_back, failed: dead-lettered) and how",
            ["outcome", "via"],
            registry=self.registry,
        )
        self.reconciliations = Counter(
            "hitl_argilla_reconciliations",
            "Reconciliation runs, by result (done, postponed, failed)",
            ["result"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
