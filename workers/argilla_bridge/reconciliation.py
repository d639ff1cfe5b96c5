"""Finds records with an answer but no emitted resolution, and resolves them: no answer is lost.

Webhooks are delivered a few times and then given up on, and none reaches a collector that is
down; so, at start and every `reconcile_interval_seconds`, every dataset of the bridge is searched
for records still `awaiting` their resolution that are completed, or that hold a discarded
response (a record everyone discarded never completes), and each goes through the resolver.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from workers.argilla_bridge import datasets as ds
from workers.argilla_bridge.adapter import ArgillaAdapter
from workers.argilla_bridge.metrics import CollectorMetrics
from workers.argilla_bridge.resolver import Resolver
from workers.errors import DependencyUnavailable, HitlError
from workers.logs import log

logger = logging.getLogger("hitl.argilla_collector")

_AWAITING: dict[str, Any] = {
    "type": "terms",
    "scope": {"entity": "metadata", "metadata_property": ds.REVIEW_STATE},
    "values": [ds.AWAITING],
}
CANDIDATE_FILTERS: tuple[list[dict[str, Any]], ...] = (
    [
        {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["completed"]},
        _AWAITING,
    ],
    [
        {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["discarded"]},
        _AWAITING,
    ],
)


class Reconciler:
    def __init__(
        self,
        adapter: ArgillaAdapter,
        resolver: Resolver,
        workspace: str,
        dataset_prefix: str,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.metrics = metrics or CollectorMetrics()
        self.adapter = adapter
        self.resolver = resolver
        self.workspace = workspace
        self.dataset_prefix = dataset_prefix

    def run_once(self) -> Counter[str]:
        """Resolves every candidate record; counts what became of them."""
        outcomes: Counter[str] = Counter()
        workspace_id = self.adapter.ensure_workspace(self.workspace)
        for dataset in self.adapter.list_datasets(workspace_id):
            if not str(dataset["name"]).startswith(self.dataset_prefix + "-"):
                continue
            candidates: dict[str, None] = {}
            for filters in CANDIDATE_FILTERS:
                candidates.update(
                    dict.fromkeys(str(r["id"]) for r in self.adapter.search_records(dataset["id"], filters))
                )
            for record_id in candidates:
                try:
                    outcome = self.resolver.resolve_record(record_id)
                    outcomes[outcome] += 1
                    self.metrics.records.labels(outcome, "reconciliation").inc()
                except DependencyUnavailable:
                    raise
                except HitlError as error:
                    log(logger, "reconcile_failed", logging.WARNING, record=record_id, error=str(error))
                    outcomes["failed"] += 1
        return outcomes

    def loop(self, stop: threading.Event, interval_seconds: float) -> None:
        """Reconciles now, then every `interval_seconds` until `stop` is set."""
        while not stop.is_set():
            try:
                outcomes = self.run_once()
                self.metrics.reconciliations.labels("done").inc()
                if outcomes:
                    log(logger, "reconciled", **dict(outcomes))
            except DependencyUnavailable as error:
                self.metrics.reconciliations.labels("postponed").inc()
                log(logger, "reconcile_postponed", logging.WARNING, error=str(error)[:500])
            except Exception:
                self.metrics.reconciliations.labels("failed").inc()
                logger.exception("reconciliation failed")
            if stop.wait(interval_seconds):
                return
