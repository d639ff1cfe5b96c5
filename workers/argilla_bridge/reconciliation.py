"""Finds records with an answer but no emitted resolution, and resolves them: no answer is lost.

Webhooks are delivered a few times and then given up on, and none reaches a collector that is
down; so, at start and every `reconcile_interval_seconds`, every dataset of the bridge is searched
for records that are completed, or that hold a discarded response (a record everyone discarded
never completes), and each that is still `awaiting` its resolution, or whose answers changed since
its last emitted revision (an edit whose webhook was lost), goes through the resolver. Records
whose current answers already failed are skipped. Each dataset and each record stands alone: one
that fails is counted and logged, and the pass goes on.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from workers.argilla_bridge import datasets as ds
from workers.argilla_bridge.adapter import ArgillaAdapter
from workers.argilla_bridge.metrics import CollectorMetrics
from workers.argilla_bridge.resolver import Resolver, needs_resolving
from workers.errors import DependencyUnavailable
from workers.logs import log

logger = logging.getLogger("hitl.argilla_collector")

_ANSWERED: tuple[dict[str, Any], ...] = (
    {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["completed"]},
    {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["discarded"]},
)
CANDIDATE_FILTERS: tuple[list[dict[str, Any]], ...] = tuple(
    [
        answered,
        {
            "type": "terms",
            "scope": {"entity": "metadata", "metadata_property": ds.REVIEW_STATE},
            "values": [state],
        },
    ]
    for state in (ds.AWAITING, ds.EMITTED)
    for answered in _ANSWERED
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
            try:
                candidates = self._candidates(str(dataset["id"]))
            except DependencyUnavailable:
                raise
            except Exception as error:  # one dataset must not hold back the others
                log(
                    logger,
                    "reconcile_dataset_failed",
                    logging.WARNING,
                    dataset=dataset["name"],
                    error=repr(error)[:500],
                )
                outcomes["dataset_failed"] += 1
                continue
            for record_id in candidates:
                outcome = self._resolve(record_id)
                outcomes[outcome] += 1
                self.metrics.records.labels(outcome, "reconciliation").inc()
        return outcomes

    def _candidates(self, dataset_id: str) -> list[str]:
        found: dict[str, None] = {}
        for filters in CANDIDATE_FILTERS:
            for record in self.adapter.search_records(dataset_id, filters):
                if needs_resolving(record):
                    found[str(record["id"])] = None
        return list(found)

    def _resolve(self, record_id: str) -> str:
        try:
            return self.resolver.resolve_record(record_id)
        except DependencyUnavailable:
            raise
        except Exception as error:  # the resolver records what it can; the pass goes on
            log(logger, "reconcile_failed", logging.WARNING, record=record_id, error=repr(error)[:500])
            return "error"

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
