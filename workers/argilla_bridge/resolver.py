"""Applies the resolution of one record: emit it and mark the record, or send corrections back.

Webhook calls and the reconciliation loop both come here, one record at a time (a lock), and each
reads the record afresh, so a record resolved by one is seen as emitted by the other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from workers.argilla_bridge import datasets as ds
from workers.argilla_bridge.adapter import ArgillaAdapter
from workers.argilla_bridge.emission import ResolutionEmitter
from workers.argilla_bridge.records import is_emitted, responses_of, task_of
from workers.argilla_bridge.resolution import CorrectionCheck, SendBack, Unresolved, resolve
from workers.contracts import ReviewResolution
from workers.errors import RejectedEvent
from workers.logs import log

logger = logging.getLogger("hitl.argilla_collector")

DRAFT = "draft"


class Resolver:
    def __init__(
        self,
        adapter: ArgillaAdapter,
        emitter: ResolutionEmitter,
        check_correction: CorrectionCheck,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.adapter = adapter
        self.emitter = emitter
        self.check_correction = check_correction
        self.clock = clock
        self._lock = threading.Lock()
        self._min_submitted: dict[str, int] = {}

    def resolve_record(self, record_id: str) -> str:
        """What became of the record: emitted, sent_back, unresolved, already_emitted or unreadable."""
        with self._lock:
            record = self.adapter.record(record_id)
            if is_emitted(record):
                return "already_emitted"
            try:
                task = task_of(record)
            except RejectedEvent as error:
                log(logger, "record_unreadable", logging.WARNING, record=record_id, error=str(error))
                return "unreadable"
            decision = resolve(
                task,
                responses_of(record),
                min_submitted=self._min_submitted_of(str(record["dataset_id"])),
                now=self.clock(),
                check_correction=self.check_correction,
            )
            if isinstance(decision, ReviewResolution):
                self.emitter.emit(decision)
                metadata = {**(record.get("metadata") or {}), ds.REVIEW_STATE: ds.EMITTED}
                self.adapter.update_record(record_id, metadata=metadata)
                log(
                    logger,
                    "resolution_emitted",
                    task=str(task.task_id),
                    status=decision.status.value,
                    reviewers=len(decision.reviewers),
                    agreement=decision.agreement,
                )
                return "emitted"
            if isinstance(decision, SendBack):
                self._send_back(record, decision)
                return "sent_back"
            assert isinstance(decision, Unresolved)
            return "unresolved"

    def _send_back(self, record: dict[str, Any], decision: SendBack) -> None:
        """Shows the error on the record, then turns the offending responses back into drafts.

        A draft keeps the reviewer's text but does not count as submitted, so Argilla puts the
        record back to pending and the reviewer finds it again with the error beside it.
        """
        fields = {**record["fields"], ds.REVIEW_FEEDBACK: decision.message}
        self.adapter.update_record(str(record["id"]), fields=fields)
        for response in decision.responses:
            self.adapter.update_response(response.response_id, response.values, DRAFT)
        log(
            logger,
            "correction_sent_back",
            record=str(record["id"]),
            responses=len(decision.responses),
            error=decision.message[:300],
        )

    def _min_submitted_of(self, dataset_id: str) -> int:
        known = self._min_submitted.get(dataset_id)
        if known is None:
            distribution = self.adapter.dataset(dataset_id).get("distribution") or {}
            known = int(distribution.get("min_submitted", 1))
            self._min_submitted[dataset_id] = known
        return known
