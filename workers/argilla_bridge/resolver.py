"""Applies the resolution of one record: emit it and mark the record, or send answers back.

Webhook calls and the reconciliation loop both come here, one record at a time (a lock), and each
reads the record afresh, so a record resolved by one is seen as emitted by the other.

Each record stands alone. Whatever goes wrong with one (an unreadable record, an answer that
breaks the resolution, a resolution Kafka refuses, any exception but an unavailable dependency)
is recorded for that record: a dead letter on `hitl.review.resolved.dlq` with the reason, the
answers sent back to their reviewers where they can fix them, and a mark on the record with the
digest of the answers that failed and of the task, so that later passes skip it until a reviewer
changes the answers (or the task is published again).

An emitted record is marked with its revision and the digest of the answers it was resolved
from. Answers changed after that (a reviewer edits a submitted response) resolve into the next
revision; the same answers resolve into the same revision, byte for byte, however often.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workers.argilla_bridge import datasets as ds
from workers.argilla_bridge.adapter import ArgillaAdapter, ArgillaRejected
from workers.argilla_bridge.emission import ResolutionEmitter
from workers.argilla_bridge.records import ReviewResponse, is_emitted, responses_of, task_of
from workers.argilla_bridge.resolution import (
    SUBMITTED,
    CorrectionCheck,
    SendBack,
    Unresolved,
    answers_fingerprint,
    resolve,
)
from workers.contracts import ReviewResolution
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.logs import log
from workers.reasons import Reason
from workers.runtime.dead_letters import HEADER_PREFIX
from workers.runtime.messages import Headers

logger = logging.getLogger("hitl.argilla_collector")

DRAFT = "draft"
WORKER = "argilla-collector"
# Extra metadata (unindexed), written by the collector only.
EMITTED_MARK = "_hitl_emitted"
"""JSON {"revision": n, "answers": digest}: the last revision emitted and the answers it came from."""
FAILED_MARK = "_hitl_failed"
"""JSON {"what": digest, "reason": code}: these answers to this task failed and were dead-lettered."""
RESOLUTION_FAILED = Reason.RESOLUTION_FAILED
UNREADABLE = Reason.UNREADABLE_RECORD


@dataclass(frozen=True)
class Marks:
    """What the collector wrote on a record: its emitted revision and answers, and a failure."""

    revision: int | None
    emitted_answers: str | None
    failed: str | None

    @classmethod
    def of(cls, record: dict[str, Any]) -> Marks:
        metadata = record.get("metadata") or {}
        emitted, failed = _json_mark(metadata.get(EMITTED_MARK)), _json_mark(metadata.get(FAILED_MARK))
        revision = emitted.get("revision")
        return cls(
            revision=revision if isinstance(revision, int) and revision >= 1 else None,
            emitted_answers=_str_or_none(emitted.get("answers")),
            failed=_str_or_none(failed.get("what")),
        )


def needs_resolving(record: dict[str, Any]) -> bool:
    """Whether the record, as found (with its responses), may hold answers not yet resolved."""
    marks = Marks.of(record)
    try:
        answers = answers_fingerprint(responses_of(record))
    except Exception:
        return True  # the resolver records what is wrong with it
    if _failure_key(record, answers) == marks.failed:
        return False
    if is_emitted(record):
        # An emitted record from before revisions were recorded is taken as current.
        return marks.emitted_answers is not None and answers != marks.emitted_answers
    return True


class Resolver:
    def __init__(
        self,
        adapter: ArgillaAdapter,
        emitter: ResolutionEmitter,
        check_correction: CorrectionCheck,
    ) -> None:
        self.adapter = adapter
        self.emitter = emitter
        self.check_correction = check_correction
        self._lock = threading.Lock()
        self._min_submitted: dict[str, int] = {}

    def resolve_record(self, record_id: str) -> str:
        """What became of the record: emitted, sent_back, unresolved, already_emitted, failed or
        failed_before. Raises DependencyUnavailable only."""
        with self._lock:
            record = self.adapter.record(record_id)
            try:
                return self._resolve(record)
            except DependencyUnavailable:
                raise
            except Exception as error:  # one record's failure must not stop the others
                return self._fail(record, error, answers_at_fault=False)

    def _resolve(self, record: dict[str, Any]) -> str:
        record_id = str(record["id"])
        responses = responses_of(record)
        answers = answers_fingerprint(responses)
        marks = Marks.of(record)
        if _failure_key(record, answers) == marks.failed:
            return "failed_before"
        revision = _revision_to_emit(record, answers, marks)
        if revision is None:
            return "already_emitted"
        try:
            task = task_of(record)
        except RejectedEvent as error:
            return self._fail(record, error, answers_at_fault=False)
        try:
            decision = resolve(
                task,
                responses,
                min_submitted=self._min_submitted_of(str(record["dataset_id"])),
                check_correction=self.check_correction,
                revision=revision,
            )
            if isinstance(decision, ReviewResolution):
                self.emitter.emit(decision)
        except DependencyUnavailable:
            raise
        except Exception as error:  # caused by these answers: recorded, then sent back
            return self._fail(record, error, answers_at_fault=True)
        if isinstance(decision, SendBack):
            self._send_back(record, decision)
            return "sent_back"
        if isinstance(decision, Unresolved):
            return "unresolved"
        metadata = {**(record.get("metadata") or {}), ds.REVIEW_STATE: ds.EMITTED}
        metadata[EMITTED_MARK] = json.dumps({"revision": revision, "answers": answers})
        metadata.pop(FAILED_MARK, None)
        self.adapter.update_record(record_id, metadata=metadata)
        log(
            logger,
            "resolution_emitted",
            task=str(task.task_id),
            status=decision.status.value,
            revision=revision,
            reviewers=len(decision.reviewers),
            agreement=decision.agreement,
        )
        return "emitted"

    def _fail(self, record: dict[str, Any], error: BaseException, *, answers_at_fault: bool) -> str:
        """Dead-letters the record, sends its answers back when they are at fault, marks it failed."""
        record_id = str(record["id"])
        reason = error.reason if isinstance(error, RejectedEvent) else RESOLUTION_FAILED
        self.emitter.dead_letter(
            str(record.get("external_id") or record_id).encode(),
            _dead_letter_value(record),
            _dead_letter_headers(record, reason, error),
        )
        log(
            logger,
            "record_dead_lettered",
            logging.WARNING,
            record=record_id,
            reason=reason,
            error_class=type(error).__name__,
            error=str(error)[:500],
        )
        responses = _safe_responses(record)
        submitted = tuple(r for r in responses if r.status == SUBMITTED)
        if answers_at_fault and submitted:
            message = (
                "**Your last answer could not be processed** and was not accepted: "
                f"{_reviewer_reason(error)}. Change it and submit again."
            )
            try:
                self._send_back(record, SendBack(submitted, message))
                return "failed"
            except ArgillaRejected as refused:
                log(logger, "send_back_refused", logging.WARNING, record=record_id, error=str(refused)[:500])
        metadata = {**(record.get("metadata") or {})}
        failed = _failure_key(record, answers_fingerprint(responses))
        metadata[FAILED_MARK] = json.dumps({"what": failed, "reason": reason})
        try:
            self.adapter.update_record(record_id, metadata=metadata)
        except ArgillaRejected as refused:
            log(logger, "failure_mark_refused", logging.WARNING, record=record_id, error=str(refused)[:500])
        return "failed"

    def _send_back(self, record: dict[str, Any], decision: SendBack) -> None:
        """Shows the error on the record, then turns the offending responses back into drafts.

        A draft keeps the reviewer's text but does not count as submitted, so Argilla puts the
        record back to pending and the reviewer finds it again with the error beside it. A
        dataset without the feedback field (only extraction datasets have it) gets the drafts only.
        """
        fields = {**record["fields"], ds.REVIEW_FEEDBACK: decision.message}
        try:
            self.adapter.update_record(str(record["id"]), fields=fields)
        except ArgillaRejected as refused:
            log(
                logger,
                "feedback_refused",
                logging.WARNING,
                record=str(record["id"]),
                error=str(refused)[:300],
            )
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


def _revision_to_emit(record: dict[str, Any], answers: str, marks: Marks) -> int | None:
    """The revision these answers resolve into; None when it is emitted already."""
    if marks.revision is None:
        # An emitted record from before revisions were recorded is taken as current.
        return None if is_emitted(record) else 1
    if answers == marks.emitted_answers:
        # Emitted, or emitted and its state reset since: then the same message again.
        return None if is_emitted(record) else marks.revision
    return marks.revision + 1


def _failure_key(record: dict[str, Any], answers: str) -> str:
    """The answers and the task they answer: a change of either (a fix, a republished task) retries."""
    task_json = str((record.get("metadata") or {}).get(ds.TASK_JSON))
    return answers + ":" + hashlib.sha256(task_json.encode("utf-8", "backslashreplace")).hexdigest()


def _json_mark(value: Any) -> dict[str, Any]:
    if not isinstance(value, str):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _safe_responses(record: dict[str, Any]) -> list[ReviewResponse]:
    try:
        return responses_of(record)
    except Exception:  # an unreadable response list is what failed; mark it as is
        return []


def _reviewer_reason(error: BaseException) -> str:
    if isinstance(error, RejectedEvent):
        return str(error)[:1000]
    if isinstance(error, RecursionError):
        return "it is nested too deeply"
    return f"{type(error).__name__}: {str(error)[:500]}"


def _dead_letter_value(record: dict[str, Any]) -> bytes:
    """The record's task JSON, as it was published; a description of the record when it has none."""
    task_json = (record.get("metadata") or {}).get(ds.TASK_JSON)
    if isinstance(task_json, str):
        return task_json.encode("utf-8", "backslashreplace")
    description = {
        "record_id": str(record.get("id")),
        "external_id": record.get("external_id"),
        "dataset_id": str(record.get("dataset_id")),
    }
    return json.dumps(description).encode()


def _dead_letter_headers(record: dict[str, Any], reason: str, error: BaseException) -> Headers:
    """The failure headers of workers/runtime/dead_letters.py; the source is the Argilla record."""
    failure = {
        "reason": reason,
        "error.class": type(error).__name__,
        "error.message": str(error)[:4000],
        "source.topic": "argilla",
        "source.dataset": str(record.get("dataset_id")),
        "source.record": str(record.get("id")),
        "worker": WORKER,
        "failed_at": datetime.now(UTC).isoformat(),
    }
    headers: Headers = [("content-type", b"application/json")]
    return headers + [
        (HEADER_PREFIX + name, value.encode("utf-8", "backslashreplace")) for name, value in failure.items()
    ]
