"""From an item's answers to a resolution on Kafka, whatever the review tool; and reconciliation.

`Resolver.resolve_item(ref)` is where the tool's notifications and the reconciliation pass both
come, one item at a time (a lock). It reads the item afresh, so an item resolved by one is seen
as emitted by the other, then:

1. skips answers that already failed, and an emitted item whose answers did not change;
2. resolves the answers (`answers.resolve`, pure): a resolution, answers to send back, or not
   enough answers yet;
3. emits the resolution to `hitl.review.resolved`, keyed by task id, acknowledged by the broker,
   then marks the item emitted with its revision and the digest of the answers;
4. or sends the answers back to their reviewers with the reason.

Each item stands alone. Whatever goes wrong with one (an unreadable item, an answer that breaks
the resolution, a resolution Kafka refuses, any exception but an unavailable dependency) is
recorded for that item: a dead letter on `hitl.review.resolved.dlq` with the reason, the answers
sent back where a reviewer can fix them, and a mark with the digest of the answers that failed
and of the task, so that later passes skip it until a reviewer changes the answers (or the task
is published again).

Answers changed after an emission (a reviewer edits a submitted answer) resolve into the next
revision; the same answers resolve into the same revision, byte for byte, however often.

`Reconciler` finds, at start and every `reconcile_interval_seconds`, the items whose answers may
not be resolved (`backend.candidates()`: notifications are lost when the collector is down), and
sends each that needs it through the resolver.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from datetime import UTC, datetime

from workers.config import Settings
from workers.contracts import AVRO_CONTENT_TYPE, Headers, ReviewResolution, ReviewTask, decode, encode
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.logs import log
from workers.reasons import Reason
from workers.review.answers import CorrectionCheck, SendBack, Unresolved, answers_fingerprint, resolve
from workers.review.backend import SUBMITTED, Answer, Marks, ReviewBackend, ReviewItem
from workers.review.metrics import CollectorMetrics
from workers.runtime.dead_letters import HEADER_PREFIX
from workers.runtime.produce_errors import ProduceRefused
from workers.runtime.producing import KafkaOutput

logger = logging.getLogger("hitl.review_collector")

WORKER = "argilla-collector"
# Below Argilla's 20 s webhook timeout, so a broker outage answers the call with 503, not a timeout.
FLUSH_TIMEOUT_SECONDS = 15.0


class ResolutionRefused(RejectedEvent):
    """Kafka refused the message for its content; the item is at fault, not the broker."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.REFUSED_BY_KAFKA, message)


class ResolutionEmitter:
    """Resolutions and the collector's dead letters onto Kafka, each acknowledged before it returns."""

    def __init__(
        self, settings: Settings, topic: str | None = None, dead_letter_topic: str | None = None
    ) -> None:
        self.topic = topic or settings.topics.review_resolved
        self.dead_letter_topic = dead_letter_topic or settings.topics.dead_letter_topic(self.topic)
        self._output = KafkaOutput(settings, name=WORKER)
        self._lock = threading.Lock()

    def emit(self, resolution: ReviewResolution) -> None:
        headers: Headers = [("content-type", AVRO_CONTENT_TYPE.encode())]
        self._produce(self.topic, str(resolution.task_id).encode(), encode(resolution), headers)

    def dead_letter(self, key: bytes | None, value: bytes, headers: Headers) -> None:
        self._produce(self.dead_letter_topic, key, value, headers)

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        with self._lock:
            try:
                self._output.send_and_acknowledge([(topic, key, value, headers)], FLUSH_TIMEOUT_SECONDS)
            except ProduceRefused as refused:
                error = refused.error
                raise ResolutionRefused(
                    f"Kafka refused the message for {topic} ({error.name()}): {error.str()}"
                ) from refused

    def close(self) -> None:
        self._output.close(FLUSH_TIMEOUT_SECONDS)


def needs_resolving(item: ReviewItem) -> bool:
    """Whether the item, as found, may hold answers not yet resolved."""
    try:
        answers = answers_fingerprint(item.answers)
    except Exception:
        return True  # the resolver records what is wrong with it
    if _failure_key(item, answers) == item.marks.failed:
        return False
    if item.emitted:
        # An item emitted before revisions were recorded is taken as current.
        return item.marks.emitted_answers is not None and answers != item.marks.emitted_answers
    return True


class Resolver:
    def __init__(
        self, backend: ReviewBackend, emitter: ResolutionEmitter, check_correction: CorrectionCheck
    ) -> None:
        self.backend = backend
        self.emitter = emitter
        self.check_correction = check_correction
        self._lock = threading.Lock()

    def resolve_item(self, ref: str) -> str:
        """What became of the item: emitted, sent_back, unresolved, already_emitted, failed or
        failed_before. Raises DependencyUnavailable only."""
        with self._lock:
            item = self.backend.item(ref)
            try:
                return self._resolve(item)
            except DependencyUnavailable:
                raise
            except Exception as error:  # one item's failure must not stop the others
                return self._fail(item, error, answers_at_fault=False)

    def _resolve(self, item: ReviewItem) -> str:
        answers = answers_fingerprint(item.answers)
        if _failure_key(item, answers) == item.marks.failed:
            return "failed_before"
        revision = _revision_to_emit(item, answers)
        if revision is None:
            return "already_emitted"
        try:
            task = _task_of(item)
        except RejectedEvent as error:
            return self._fail(item, error, answers_at_fault=False)
        try:
            ruling = resolve(
                task,
                item.answers,
                min_submitted=item.required_answers,
                check_correction=self.check_correction,
                revision=revision,
            )
            if isinstance(ruling, ReviewResolution):
                self.emitter.emit(ruling)
        except DependencyUnavailable:
            raise
        except Exception as error:  # caused by these answers: recorded, then sent back
            return self._fail(item, error, answers_at_fault=True)
        if isinstance(ruling, SendBack):
            self._send_back(item, ruling.answers, ruling.message)
            return "sent_back"
        if isinstance(ruling, Unresolved):
            return "unresolved"
        self.backend.mark_emitted(item, Marks(revision=revision, emitted_answers=answers))
        log(
            logger,
            "resolution_emitted",
            task=str(task.task_id),
            status=ruling.status.value,
            revision=revision,
            reviewers=len(ruling.reviewers),
            agreement=ruling.agreement,
        )
        return "emitted"

    def _fail(self, item: ReviewItem, error: BaseException, *, answers_at_fault: bool) -> str:
        """Dead-letters the item, sends its answers back when they are at fault, marks it failed."""
        reason = error.reason if isinstance(error, RejectedEvent) else Reason.RESOLUTION_FAILED
        self.emitter.dead_letter(
            item.task_key.encode(), _dead_letter_value(item), _dead_letter_headers(item, reason, error)
        )
        log(
            logger,
            "item_dead_lettered",
            logging.WARNING,
            item=item.ref,
            reason=reason,
            error_class=type(error).__name__,
            error=str(error)[:500],
        )
        submitted = tuple(answer for answer in item.answers if answer.status == SUBMITTED)
        if answers_at_fault and submitted:
            message = (
                "**Your last answer could not be processed** and was not accepted: "
                f"{_reviewer_reason(error)}. Change it and submit again."
            )
            try:
                self._send_back(item, submitted, message)
                return "failed"
            except RejectedEvent as refused:
                log(logger, "send_back_refused", logging.WARNING, item=item.ref, error=str(refused)[:500])
        try:
            failed = _failure_key(item, answers_fingerprint(item.answers))
        except Exception:
            failed = _failure_key(item, "unreadable")
        try:
            self.backend.mark_failed(item, Marks(failed=failed, failed_reason=str(reason)))
        except RejectedEvent as refused:
            log(logger, "failure_mark_refused", logging.WARNING, item=item.ref, error=str(refused)[:500])
        return "failed"

    def _send_back(self, item: ReviewItem, answers: tuple[Answer, ...], message: str) -> None:
        self.backend.send_back(item, answers, message)
        log(logger, "answers_sent_back", item=item.ref, answers=len(answers), error=message[:300])


class Reconciler:
    def __init__(
        self, backend: ReviewBackend, resolver: Resolver, metrics: CollectorMetrics | None = None
    ) -> None:
        self.metrics = metrics or CollectorMetrics()
        self.backend = backend
        self.resolver = resolver

    def run_once(self) -> Counter[str]:
        """Resolves every candidate item that needs it; counts what became of them."""
        outcomes: Counter[str] = Counter()
        for item in self.backend.candidates():
            if not needs_resolving(item):
                continue
            outcome = self._resolve(item.ref)
            outcomes[outcome] += 1
            self.metrics.records.labels(outcome, "reconciliation").inc()
        return outcomes

    def _resolve(self, ref: str) -> str:
        try:
            return self.resolver.resolve_item(ref)
        except DependencyUnavailable:
            raise
        except Exception as error:  # the resolver records what it can; the pass goes on
            log(logger, "reconcile_failed", logging.WARNING, item=ref, error=repr(error)[:500])
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


def _task_of(item: ReviewItem) -> ReviewTask:
    """The task the item was published from; RejectedEvent when the item does not carry it."""
    if item.task_json is None:
        raise RejectedEvent(Reason.UNREADABLE_RECORD, f"item {item.ref} does not carry its task")
    try:
        return decode(item.task_json.encode(), [("content-type", b"application/json")], ReviewTask)
    except Exception as error:
        raise RejectedEvent(Reason.UNREADABLE_RECORD, f"item {item.ref}: {error}") from error


def _revision_to_emit(item: ReviewItem, answers: str) -> int | None:
    """The revision these answers resolve into; None when it is emitted already."""
    marks = item.marks
    if marks.revision is None:
        # An item emitted before revisions were recorded is taken as current.
        return None if item.emitted else 1
    if answers == marks.emitted_answers:
        # Emitted, or emitted and its state reset since: then the same message again.
        return None if item.emitted else marks.revision
    return marks.revision + 1


def _failure_key(item: ReviewItem, answers: str) -> str:
    """The answers and the task they answer: a change of either (a fix, a republished task) retries."""
    task_json = str(item.task_json)
    return answers + ":" + hashlib.sha256(task_json.encode("utf-8", "backslashreplace")).hexdigest()


def _reviewer_reason(error: BaseException) -> str:
    if isinstance(error, RejectedEvent):
        return str(error)[:1000]
    if isinstance(error, RecursionError):
        return "it is nested too deeply"
    return f"{type(error).__name__}: {str(error)[:500]}"


def _dead_letter_value(item: ReviewItem) -> bytes:
    """The item's task JSON, as it was published; a description of the item when it has none."""
    if item.task_json is not None:
        return item.task_json.encode("utf-8", "backslashreplace")
    return json.dumps({"item": item.ref, "task_key": item.task_key, **item.where}).encode()


def _dead_letter_headers(item: ReviewItem, reason: str, error: BaseException) -> Headers:
    """The failure headers of workers/runtime/dead_letters.py; the source is the review tool's item."""
    failure = {
        "reason": reason,
        "error.class": type(error).__name__,
        "error.message": str(error)[:4000],
        **{f"source.{name}": value for name, value in item.where.items()},
        "worker": WORKER,
        "failed_at": datetime.now(UTC).isoformat(),
    }
    headers: Headers = [("content-type", b"application/json")]
    return headers + [
        (HEADER_PREFIX + name, value.encode("utf-8", "backslashreplace")) for name, value in failure.items()
    ]
