"""The consume → handle → produce → commit loop that every worker runs on.

Order of a batch: decode and handle each message (pure, no I/O); write the batch to the worker's
sink, if it has one (a database, Argilla); produce the outputs, and a dead letter for each message
the decoder, the handler or the sink rejected; wait until the broker has acknowledged every one of
them; and only then commit the batch's offsets. With transactions on, the outputs and the offsets
are committed in one Kafka transaction instead.

Failures split in two kinds. A message that is at fault is data: it goes to `<input topic>.dlq`
with its reason, and the loop goes on. A dependency that is down (the sink or the handler raises
DependencyUnavailable, or the broker does not acknowledge outputs) is not the message's fault: the
batch is rewound, every partition is paused, and the batch is retried after a backoff. A message
is never skipped for it, and since the sink's writes are idempotent upserts, a retry is harmless.

Every other failure is classified here too, so that none crashes the worker into a restart loop:
- a sink that raises anything else (a bug, an error nobody classified) is treated like a dependency
  that is down: the batch is paused and retried, with the traceback logged. Dead-lettering would
  throw good data away for the sink's fault. (A handler that raises is different: the handler is
  pure, so its failure is the message's, a `handler_error` dead letter.)
- produce() refusing a message synchronously for what it is (`produce_errors.is_message_fault`,
  MSG_SIZE_TOO_LARGE, say) dead-letters its input; any other produce error retries the batch.
- a dead letter too large for the producer or its topic is written with its value cut to its first
  bytes, and headers that say so (`hitl.dlq.value.truncated`, `.original_bytes`, `.sha256`); if
  even that is refused, without a value and the original headers.
- in transactions mode, a failed commit is aborted; if the abort fails too, or the producer's
  error is fatal (fenced), the producer is replaced by a new one with the same transactional id,
  which fences the old one and aborts what it left open, and the batch is retried.
A batch that runs longer than a share of `max.poll.interval.ms` is reported by `BatchWatchdog`.
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from workers.config import Settings
from workers.contracts import (
    AVRO_CONTENT_TYPE,
    DecodeError,
    EncodeError,
    Event,
    EventCodec,
    SchemaRegistry,
)
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.logs import log
from workers.runtime.backoff import Backoff
from workers.runtime.dead_letters import bare_dead_letter, dead_letter_headers, fit_dead_letter
from workers.runtime.kafka_config import DEAD_LETTER_MAX_MESSAGE_BYTES, consumer_config, producer_config
from workers.runtime.messages import Headers, headers_of, origin_of
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.produce_errors import ProduceRefused, is_fatal, is_message_fault, kafka_error
from workers.runtime.topics import require_topics
from workers.runtime.watchdog import BatchWatchdog
from workers.runtime.worker import Origin, Output, Received, WorkerSpec

logger = logging.getLogger("hitl.runtime")

OUTPUT_HEADERS: Headers = [("content-type", AVRO_CONTENT_TYPE.encode())]


# The headers we produce are always bytes; the producer's signature is wider than ours.
ProducerHeaders = list[tuple[str, str | bytes | None]]


# librdkafka's default max.poll.interval.ms.
DEFAULT_MAX_POLL_INTERVAL_MS = 300_000


class BatchAborted(Exception):
    """The batch's outputs were not all acknowledged: its messages must be processed again.

    `fatal` says the producer cannot be used again and must be replaced.
    """

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True, slots=True)
class Encoded:
    topic: str
    key: bytes
    value: bytes


@dataclass
class Processed:
    """One message of a batch after decoding and handling: its outputs, or why it is rejected."""

    message: Message
    origin: Origin
    event: Event | None = None
    outputs: list[Encoded] = field(default_factory=list)
    rejection: tuple[str, BaseException] | None = None


class Runner:
    def __init__(
        self,
        spec: WorkerSpec,
        settings: Settings,
        *,
        codec: EventCodec | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.codec = codec or EventCodec(
            SchemaRegistry.load(settings.schemas_dir), max_value_bytes=settings.runtime.max_value_bytes
        )
        self.metrics = metrics or WorkerMetrics(spec.name)
        self.dead_letter_topic = settings.topics.dead_letter_topic(spec.input_topic)
        self.group_id = settings.group_id(spec.name)
        self.transactional = settings.runtime.transactions
        self._backoff = Backoff(settings.runtime.retry_initial_seconds, settings.runtime.retry_max_seconds)
        self._paused_until: float | None = None
        self._stopping = False
        self._delivery_errors: list[KafkaError] = []
        # Messages produced in the batch in hand, by (topic, dead-letter reason or None); counted
        # in the metrics once the broker has acknowledged them.
        self._sent: Counter[tuple[str, str | None]] = Counter()
        self._consumed = self.metrics.consumed.labels(spec.name, spec.input_topic)
        self._handler_seconds = self.metrics.handler_seconds.labels(spec.name)
        self._event_age = self.metrics.event_age_seconds.labels(spec.name)
        consumer_settings = consumer_config(settings, self.group_id, stats_cb=self.metrics.record_statistics)
        self.consumer = Consumer(consumer_settings)
        max_poll_interval = int(consumer_settings.get("max.poll.interval.ms", DEFAULT_MAX_POLL_INTERVAL_MS))
        self._watchdog = BatchWatchdog(
            self.metrics, spec.name, max_poll_interval / 1000 * settings.runtime.stall_warning_share
        )
        self.transactional_id = f"{self.group_id}-{uuid.uuid4().hex[:12]}" if self.transactional else None
        self._producer_config = producer_config(
            settings,
            transactional_id=self.transactional_id,
            on_delivery=self._on_delivery_failure,
            **{"delivery.report.only.error": True},
        )
        # The largest dead letter both the producer and the dead-letter topic take.
        self._dead_letter_limit = min(
            DEAD_LETTER_MAX_MESSAGE_BYTES, int(self._producer_config["message.max.bytes"])
        )
        self.producer = Producer(self._producer_config)
        self._producer_ready = not self.transactional
        self._in_transaction = False

    # -- lifecycle -------------------------------------------------------------------------------

    def stop(self, *_: Any) -> None:
        """Finish the batch in hand, commit it, and leave the loop."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log(logger, "stopping", worker=self.spec.name, signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def run(self) -> None:
        require_topics(
            self.settings, [self.spec.input_topic, self.dead_letter_topic, *self.spec.output_topics]
        )
        if self.transactional:
            self.producer.init_transactions(30)
            self._producer_ready = True
        self._watchdog.start()
        self.consumer.subscribe(
            [self.spec.input_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log(logger, "started", worker=self.spec.name, topic=self.spec.input_topic, group=self.group_id)
        try:
            while not self._stopping:
                self._resume_when_due()
                messages = self.consumer.consume(
                    num_messages=self.settings.runtime.batch_size,
                    timeout=self.settings.runtime.batch_wait_seconds,
                )
                if messages:
                    self._process_batch(messages)
                else:
                    self.producer.poll(0)
        finally:
            self._close()

    def _close(self) -> None:
        self._watchdog.stop()
        remaining = self.producer.flush(self.settings.runtime.shutdown_timeout_seconds)
        self.consumer.close()
        if self.spec.sink is not None:
            self.spec.sink.close()
        log(logger, "stopped", worker=self.spec.name, unflushed=remaining)

    # -- one batch -------------------------------------------------------------------------------

    def _process_batch(self, messages: Sequence[Message]) -> None:
        consumed = [message for message in messages if not self._is_consumer_error(message)]
        if not consumed:
            return
        self._watchdog.batch_started()
        try:
            self._handle_batch(consumed)
        finally:
            self._watchdog.batch_finished()

    def _handle_batch(self, consumed: Sequence[Message]) -> None:
        origins = [origin_of(message) for message in consumed]
        try:
            results = [self._decode_and_handle(message) for message in consumed]
            self._write_to_sink(results)
        except DependencyUnavailable as error:
            # Nothing of this batch has been produced yet: all of it is retried.
            self._retry_later(origins, error)
            return
        except Exception as error:
            # Not the message's fault as far as anyone knows: a bug of the sink must not throw good
            # data away, nor crash the worker into a restart loop. Retried, loudly.
            logger.exception("sink failed", extra={"fields": {"worker": self.spec.name}})
            self._retry_later(origins, error)
            return
        try:
            self._produce(results)
        except BatchAborted as error:
            self._abandon(error)
            self._retry_later(origins, error)
            return
        self._commit_or_rewind(results)

    def _produce(self, results: Sequence[Processed]) -> None:
        if self.transactional:
            self._begin_transaction()
        for result in results:
            if result.rejection is None:
                try:
                    for output in result.outputs:
                        self._send(output.topic, output.key, output.value, OUTPUT_HEADERS, reason=None)
                    continue
                except ProduceRefused as error:
                    # Outputs of this message produced before the refused one stay (at least once).
                    result.rejection = ("output_refused", error)
            self._dead_letter(result, *result.rejection)

    def _begin_transaction(self) -> None:
        try:
            if not self._producer_ready:
                self.producer.init_transactions(30)
                self._producer_ready = True
            self.producer.begin_transaction()
        except KafkaException as error:
            raise BatchAborted(f"no transaction: {error}", fatal=is_fatal(kafka_error(error))) from error
        self._in_transaction = True

    def _decode_and_handle(self, message: Message) -> Processed:
        origin = origin_of(message)
        self._consumed.inc()
        started = time.perf_counter()
        try:
            event = self.codec.decode(message.value(), headers_of(message), self.spec.input_types)
            outputs = [self._encode(output) for output in self.spec.handler(event, origin)]
            return Processed(message, origin, event, outputs)
        except DependencyUnavailable:
            raise
        except (DecodeError, RejectedEvent) as error:
            return Processed(message, origin, rejection=(str(error.reason), error))
        except EncodeError as error:
            return Processed(message, origin, rejection=("output_invalid", error))
        except Exception as error:
            logger.exception("handler failed", extra={"fields": {"worker": self.spec.name}})
            return Processed(message, origin, rejection=("handler_error", error))
        finally:
            self._handler_seconds.observe(time.perf_counter() - started)

    def _write_to_sink(self, results: Sequence[Processed]) -> None:
        """The batch's side effect, before anything is produced; events the sink refuses are rejected."""
        sink = self.spec.sink
        accepted = [result for result in results if result.event is not None and result.rejection is None]
        if sink is None or not accepted:
            return
        started = time.perf_counter()
        refused = sink.write([Received(result.event, result.origin) for result in accepted if result.event])
        self.metrics.sink_seconds.labels(self.spec.name).observe(time.perf_counter() - started)
        for index, error in refused.items():
            accepted[index].rejection = (error.reason, error)

    def _encode(self, output: Output) -> Encoded:
        value = self.codec.encode(output.event)
        if len(value) > self.settings.runtime.max_output_bytes:
            # The broker would refuse it, and the batch would be retried forever.
            raise RejectedEvent(
                "output_too_large",
                f"the {type(output.event).__name__} for {output.topic} is {len(value)} bytes, "
                f"above HITL_RUNTIME__MAX_OUTPUT_BYTES={self.settings.runtime.max_output_bytes}",
            )
        return Encoded(output.topic, output.key.encode(), value)

    def _dead_letter(self, result: Processed, reason: str, error: BaseException) -> None:
        message, origin = result.message, result.origin
        log(
            logger,
            "dead_letter",
            logging.WARNING,
            worker=self.spec.name,
            reason=reason,
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            error=str(error)[:500],
        )
        headers = dead_letter_headers(
            headers_of(message), origin, worker=self.spec.name, reason=reason, error=error
        )
        key, original = message.key(), message.value()
        value, fitted = fit_dead_letter(key, original, headers, self._dead_letter_limit)
        try:
            self._send(self.dead_letter_topic, key, value, fitted, reason=reason)
        except ProduceRefused:
            value, bare = bare_dead_letter(original, headers)
            try:
                self._send(self.dead_letter_topic, key, value, bare, reason=reason)
            except ProduceRefused as refused:
                # Nowhere to put it: never skip a message silently; retry and let hitl_paused show it.
                raise BatchAborted(f"the dead letter was refused: {refused}") from refused

    def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        reason: str | None,
    ) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=cast(ProducerHeaders, headers))
                break
            except BufferError:
                # The producer's queue is full: let deliveries drain, then try again.
                self.producer.poll(0.1)
            except KafkaException as exception:
                error = kafka_error(exception)
                if is_message_fault(error) and error is not None:
                    raise ProduceRefused(error) from exception
                raise BatchAborted(f"produce failed: {exception}", fatal=is_fatal(error)) from exception
        self._sent[(topic, reason)] += 1

    def _on_delivery_failure(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._delivery_errors.append(error)

    def _count_acknowledged(self) -> None:
        for (topic, reason), count in self._sent.items():
            if reason is None:
                self.metrics.produced.labels(self.spec.name, topic).inc(count)
            else:
                self.metrics.dead_letters.labels(self.spec.name, self.spec.input_topic, reason).inc(count)
        self._sent.clear()

    # -- commit, rewind, retry -------------------------------------------------------------------

    def _commit_or_rewind(self, results: Sequence[Processed]) -> None:
        origins = [result.origin for result in results]
        try:
            self._commit(origins)
        except BatchAborted as error:
            self._abandon(error)
            self._retry_later(origins, error)
            return
        self._count_acknowledged()
        self._backoff.reset()
        now = datetime.now(UTC)
        for result in results:
            event_time = _event_time(result.event) if result.rejection is None and result.event else None
            if event_time is not None:
                self._event_age.observe((now - event_time).total_seconds())

    def _commit(self, finished: Sequence[Origin]) -> None:
        offsets = _next_offsets(finished)
        if self.transactional:
            try:
                if offsets:
                    self.producer.send_offsets_to_transaction(
                        offsets, self.consumer.consumer_group_metadata(), 30
                    )
                self.producer.commit_transaction(60)
            except KafkaException as error:
                raise BatchAborted(
                    f"transaction not committed: {error}", fatal=is_fatal(kafka_error(error))
                ) from error
            self._in_transaction = False
            return
        unacknowledged = self.producer.flush(120)
        if unacknowledged or self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            raise BatchAborted(
                f"{unacknowledged} outputs unacknowledged, delivery errors: {errors[:3]}",
                fatal=any(error.fatal() for error in errors),
            )
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as error:
                # Outputs are acknowledged; the worst outcome is that this batch is processed again.
                log(logger, "commit_failed", logging.WARNING, worker=self.spec.name, error=str(error))

    def _abandon(self, error: BatchAborted) -> None:
        """Forgets what the aborted batch produced: aborts its transaction, or replaces a producer
        that cannot go on."""
        self._sent.clear()
        self._delivery_errors.clear()
        if self.transactional and self._in_transaction and not error.fatal:
            try:
                self.producer.abort_transaction(60)
                self._in_transaction = False
                return
            except KafkaException as abort_error:
                log(logger, "abort_failed", logging.WARNING, worker=self.spec.name, error=str(abort_error))
        if error.fatal or self._in_transaction:
            self._replace_producer()

    def _replace_producer(self) -> None:
        old, self.producer = self.producer, Producer(self._producer_config)
        # What the old producer still holds is abandoned: the batch is produced again.
        try:
            old.purge()
            old.flush(0)
        except KafkaException as error:
            log(logger, "purge_failed", logging.WARNING, worker=self.spec.name, error=str(error))
        # With the same transactional id, the new producer's init_transactions fences the old one
        # and aborts the transaction it left open.
        self._producer_ready = not self.transactional
        self._in_transaction = False
        self.metrics.producer_replaced.labels(self.spec.name).inc()
        log(logger, "producer_replaced", logging.WARNING, worker=self.spec.name)

    def _retry_later(self, unfinished: Sequence[Origin], error: Exception) -> None:
        """Rewinds every partition to its first unfinished message and pauses consumption."""
        for partition in _first_offsets(unfinished):
            self.consumer.seek(partition)
        retry_after = error.retry_after if isinstance(error, DependencyUnavailable) else None
        delay = self._backoff.next_delay(at_least=retry_after)
        self._paused_until = time.monotonic() + delay
        self.consumer.pause(self.consumer.assignment())
        reason = "DependencyUnavailable" if isinstance(error, BatchAborted) else type(error).__name__
        self.metrics.retries.labels(self.spec.name, reason).inc()
        self.metrics.paused.labels(self.spec.name).set(1)
        log(
            logger,
            "paused_for_retry",
            logging.WARNING,
            worker=self.spec.name,
            retry_in_seconds=round(delay, 2),
            attempt=self._backoff.attempts,
            error=str(error)[:500],
        )

    def _resume_when_due(self) -> None:
        if self._paused_until is None or time.monotonic() < self._paused_until:
            return
        self._paused_until = None
        self.consumer.resume(self.consumer.assignment())
        self.metrics.paused.labels(self.spec.name).set(0)
        log(logger, "resumed", worker=self.spec.name)

    # -- rebalance -------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log(logger, "partitions_assigned", worker=self.spec.name, partitions=_describe(partitions))
        if self._paused_until is not None:
            consumer.pause(partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Batches are committed before the loop polls again, so revoked partitions have nothing pending.
        log(logger, "partitions_revoked", worker=self.spec.name, partitions=_describe(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log(
            logger,
            "partitions_lost",
            logging.WARNING,
            worker=self.spec.name,
            partitions=_describe(partitions),
        )

    def _is_consumer_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.fatal():
            raise KafkaException(error)
        if error.code() != KafkaError._PARTITION_EOF:
            log(logger, "consumer_error", logging.WARNING, worker=self.spec.name, error=str(error))
        return True


def _event_time(event: Event) -> datetime | None:
    for name in ("occurred_at", "created_at", "resolved_at", "decided_at"):
        value = getattr(event, name, None)
        if isinstance(value, datetime):
            return value
    return None


def _next_offsets(origins: Iterable[Origin]) -> list[TopicPartition]:
    """The offsets to commit: one past the last message of each partition."""
    last: dict[tuple[str, int], int] = {}
    for origin in origins:
        key = (origin.topic, origin.partition)
        last[key] = max(last.get(key, -1), origin.offset)
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()]


def _first_offsets(origins: Iterable[Origin]) -> list[TopicPartition]:
    first: dict[tuple[str, int], int] = {}
    for origin in origins:
        key = (origin.topic, origin.partition)
        first[key] = min(first.get(key, origin.offset), origin.offset)
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in first.items()]


def _describe(partitions: Iterable[TopicPartition]) -> list[str]:
    return [f"{p.topic}[{p.partition}]" for p in partitions]
