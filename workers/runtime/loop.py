"""The consume → handle → produce → commit loop that every worker runs on.

A batch, in order:
1. decode and handle each message (`batch.BatchHandler`: pure, no I/O);
2. write the accepted events, with what their handler decided, to the worker's sink, if it has
   one (a database, Argilla); events the sink refuses become rejections;
3. produce the outputs, and a dead letter for each message the decoder, the handler, the sink or
   the producer rejected (`producing.KafkaOutput`);
4. wait until the broker has acknowledged every one of them;
5. only then commit the batch's offsets. With transactions on, steps 4 and 5 are one Kafka
   transaction instead.

A batch's outputs are produced as soon as it is handled, without waiting for the batches before
it; steps 4 and 5 are done for every batch produced so far at once: when nothing new is in hand
and the broker has acknowledged them all (checked every few milliseconds, which also sends what
librdkafka holds for `linger.ms`), or when `messages_in_flight` input messages are produced and
unacknowledged (then the loop waits). The limit counts messages, not batches: under a steady
moderate rate, batches are a few messages each, and a limit of a few batches would be reached
within milliseconds, making the loop wait for a broker round trip again and again. An event is
thus produced a few milliseconds after it is read, and never waits for the batches before it to
be acknowledged. If the broker does not acknowledge something, every batch in flight is rewound
and retried, with the batch in hand. With transactions on, each batch is its own transaction, and
nothing is in flight between batches.

Below the limit, commits are at least `commit_interval_ms` apart: once everything in flight is
acknowledged, the loop waits for new input (or a commit's answer) in the consumer's poll until
the interval is over, and commits then (a failed delivery is rewound at once). Outputs are not
held back by it. At 5,000 events/s a commit per batch was some 300 commits a second, and while
two were unanswered the loop spun between an empty consume and a flush that had nothing to wait
for: together about a tenth of a core of the worker's (45% → 36% at that rate) and a few
hundredths of the broker's.

A batch is what is in hand when the loop asks, up to `batch_size`: the loop waits (up to
`batch_wait_seconds`) only when nothing is in hand nor waiting for the broker, so that an event
never waits for a batch to fill. The commit of step 5 is asynchronous while fewer than two
asynchronous commits are unanswered (librdkafka answers only those), else synchronous: it is sent
only after step 4, so offsets never run ahead of acknowledged outputs, and at most two commits are
ever in flight, so a crash replays at most the batch in hand, the batches in flight, those since
the last commit and those of the two commits before. A commit that fails is logged, and its
messages are read again after a restart (at least once, as with a synchronous commit). Before
partitions are given up (after the batches in flight are finished), and before the consumer
closes, the last offsets are committed synchronously. Metrics are recorded once per batch.

Failures split in two kinds. A message that is at fault is data: it goes to `<input topic>.dlq`
with its reason, and the loop goes on. A dependency that is down (the sink raises
DependencyUnavailable, or the broker does not acknowledge outputs) is not the message's fault: the
batch is rewound, every partition is paused, and the batch is retried after a backoff (`pausing`).
A message is never skipped for it, and since the sink's writes are idempotent upserts, a retry is
harmless.

Every other failure is classified here too, so that none crashes the worker into a restart loop:
- a sink that raises anything else (a bug, an error nobody classified) is treated like a dependency
  that is down: the batch is paused and retried, with the traceback logged. Dead-lettering would
  throw good data away for the sink's fault. (A handler that raises is different: the handler is
  pure, so its failure is the message's, a `handler_error` dead letter.)
- produce() refusing a message for what it is (`produce_errors.is_message_fault`, MSG_SIZE_TOO_LARGE,
  say) dead-letters its input; any other produce error retries the batch.
- a dead letter too large for the producer or its topic is written with its value cut to its first
  bytes, and headers that say so (`dead_letters.fit_dead_letter`); if even that is refused, without
  a value and the original headers.
- in transactions mode, a failed commit is aborted; if the abort fails too, or the producer's
  error is fatal (fenced), the producer is replaced (`KafkaOutput.abandon`) and the batch retried.
A batch that runs longer than a share of `max.poll.interval.ms` is reported by `BatchWatchdog`.
A consumer that lost its partitions and is assigned none within `rejoin_timeout_seconds` is
replaced by a new one (`hitl_consumer_replaced`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from workers.config import Settings
from workers.contracts import AVRO_CONTENT_TYPE, EventCodec, Headers, SchemaRegistry
from workers.errors import DependencyUnavailable
from workers.logs import log
from workers.reasons import Reason
from workers.runtime.backoff import Backoff
from workers.runtime.batch import BatchHandler, MessageResult
from workers.runtime.dead_letters import bare_dead_letter, dead_letter_headers, fit_dead_letter
from workers.runtime.kafka_config import DEAD_LETTER_MAX_MESSAGE_BYTES, consumer_config
from workers.runtime.messages import origin_of
from workers.runtime.metrics import WorkerMetrics, observe_many
from workers.runtime.offsets import next_offsets
from workers.runtime.pausing import Pause
from workers.runtime.produce_errors import ProduceRefused
from workers.runtime.producing import KafkaOutput, OutputsNotAcknowledged
from workers.runtime.topics import require_topics
from workers.runtime.watchdog import BatchWatchdog
from workers.runtime.worker import Origin, WorkerSpec
from workers.stopping import stop_on_signals

logger = logging.getLogger("hitl.runtime")

OUTPUT_HEADERS: Headers = [("content-type", AVRO_CONTENT_TYPE.encode())]
OUTPUT_REFUSED = Reason.OUTPUT_REFUSED

COMMITS_IN_FLIGHT = 2

# How long the loop, with nothing in hand, waits for the broker to acknowledge what is in flight
# before it looks for new messages again.
ACKNOWLEDGEMENT_CHECK_SECONDS = 0.002
# The longest a consumer that lost its partitions waits to be assigned some before it is replaced.
MAX_REJOIN_WAIT_SECONDS = 3600.0
# librdkafka's default max.poll.interval.ms.
DEFAULT_MAX_POLL_INTERVAL_MS = 300_000

Rebalance = Callable[[Consumer, list[TopicPartition]], None]


@dataclass(slots=True)
class InFlight:
    """Batches whose outputs are produced, waiting for the broker's acknowledgement and their commit."""

    results: list[MessageResult]
    origins: list[Origin]

    def add(self, results: Sequence[MessageResult], origins: Sequence[Origin]) -> None:
        self.results.extend(results)
        self.origins.extend(origins)


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
        self._handle = BatchHandler(spec, self.codec, settings.runtime.max_output_bytes)
        self._pause = Pause(
            spec.name,
            Backoff(settings.runtime.retry_initial_seconds, settings.runtime.retry_max_seconds),
            self.metrics,
        )
        self._stopping = False
        # The batches whose outputs are produced and not yet acknowledged, committed once they are.
        self._in_flight: InFlight | None = None
        # Whether the broker has acknowledged everything in flight, which waits for its commit.
        self._in_flight_acknowledged = False
        self._commit_interval = settings.runtime.commit_interval_ms / 1000
        # When (monotonic) the next commit is due, unless the in-flight limit comes first.
        self._next_commit_at = 0.0
        self._messages_in_flight = 1 if self.transactional else settings.runtime.in_flight_limit
        # Messages produced and not yet acknowledged, by (topic, dead-letter reason or None);
        # counted in the metrics once the broker has acknowledged them.
        self._sent: Counter[tuple[str, str | None]] = Counter()
        self._consumed = self.metrics.consumed.labels(spec.name, spec.input_topic)
        self._handler_seconds = self.metrics.handler_seconds.labels(spec.name)
        self._event_age = self.metrics.event_age_seconds.labels(spec.name)
        self._fast_path_fallbacks = self.metrics.fast_path_fallbacks.labels(spec.name)
        # Offsets committed asynchronously and not yet confirmed by a synchronous commit.
        self._uncertain_commits: dict[tuple[str, int], int] = {}
        # Asynchronous commits sent, and those the broker answered (librdkafka calls on_commit for each).
        self._commits_sent = 0
        self._commits_answered = 0
        self._consumer_settings = consumer_config(
            settings, self.group_id, stats_cb=self.metrics.record_statistics
        )
        self._consumers_made = 0
        self.consumer = self._new_consumer()
        # When the consumer lost its partitions, while it has been assigned none since (monotonic).
        self._lost_at: float | None = None
        # How long it may stay so: doubled at each replacement, so that a long outage, which no new
        # consumer can join either, does not pile up consumers still trying to leave.
        self._rejoin_wait = settings.runtime.rejoin_timeout_seconds
        self._consumer_replaced = self.metrics.consumer_replaced.labels(spec.name)
        max_poll_interval = int(
            self._consumer_settings.get("max.poll.interval.ms", DEFAULT_MAX_POLL_INTERVAL_MS)
        )
        self._watchdog = BatchWatchdog(
            self.metrics, spec.name, max_poll_interval / 1000 * settings.runtime.stall_warning_share
        )
        self.transactional_id = f"{self.group_id}-{uuid.uuid4().hex[:12]}" if self.transactional else None
        replaced = self.metrics.producer_replaced.labels(spec.name)
        self.output = KafkaOutput(
            settings, transactional_id=self.transactional_id, name=spec.name, on_replaced=replaced.inc
        )
        # The largest dead letter both the producer and the dead-letter topic take.
        self._dead_letter_limit = min(DEAD_LETTER_MAX_MESSAGE_BYTES, self.output.max_message_bytes)

    @property
    def paused(self) -> bool:
        """True while consumption is paused for a retry."""
        return self._pause.paused

    # -- lifecycle -------------------------------------------------------------------------------

    def stop(self, *_: Any) -> None:
        """Finish the batch in hand, commit it, and leave the loop."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        stop_on_signals(logger, self.stop, worker=self.spec.name)

    def run(self) -> None:
        require_topics(
            self.settings, [self.spec.input_topic, self.dead_letter_topic, *self.spec.output_topics]
        )
        self.output.init_transactions()
        self._watchdog.start()
        self._subscribe()
        log(logger, "started", worker=self.spec.name, topic=self.spec.input_topic, group=self.group_id)
        # What exists now (modules, schemas, the policy) lives as long as the worker: keep it out of
        # every garbage collection, which would otherwise walk it again and again.
        gc.collect()
        gc.freeze()
        try:
            while not self._stopping:
                self._pause.resume_when_due(self.consumer)
                if self._lost_at is not None:
                    self._replace_consumer_if_it_does_not_rejoin()
                messages = self._messages_in_hand(self._wait_seconds())
                if messages:
                    self._process_batch(messages)
                elif self._in_flight is None:
                    self.output.serve_events()
                elif self._in_flight_acknowledged or self.output.wait_for_acknowledgements(
                    ACKNOWLEDGEMENT_CHECK_SECONDS
                ):
                    self._in_flight_acknowledged = True
                    if (self._commit_due() or self.output.failed) and self._commit_would_not_wait():
                        self._complete_in_flight()
            self._complete_in_flight()
        finally:
            self._close()

    def _new_consumer(self) -> Consumer:
        # Only the current consumer's commit answers count: a replaced one may still get its own.
        self._consumers_made += 1
        made = self._consumers_made

        def on_commit(error: KafkaError | None, partitions: list[TopicPartition]) -> None:
            if made == self._consumers_made:
                self._on_commit(error, partitions)

        return Consumer({**self._consumer_settings, "on_commit": on_commit})

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            [self.spec.input_topic],
            on_assign=self._if_current(self._on_assign),
            on_revoke=self._if_current(self._on_revoke),
            on_lost=self._if_current(self._on_lost),
        )

    def _if_current(self, callback: Rebalance) -> Rebalance:
        """`callback`, for the current consumer only: a replaced one's rebalances are not ours."""

        def call(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            if consumer is self.consumer:
                callback(consumer, partitions)

        return call

    def _replace_consumer_if_it_does_not_rejoin(self) -> None:
        """A consumer that lost its partitions (its session timed out) and has been assigned none
        for `rejoin_timeout_seconds` (twice that after a replacement, and so on, up to an hour) is
        replaced by a new one, which joins the group afresh. After a broker outage longer than the
        session, librdkafka has been seen never to rejoin: the group stayed empty, and the worker
        idle for good. Nothing is in flight: it went with the partitions."""
        assert self._lost_at is not None
        waited = time.monotonic() - self._lost_at
        if waited < self._rejoin_wait:
            return
        log(
            logger,
            "consumer_replaced",
            logging.WARNING,
            worker=self.spec.name,
            seconds_without_assignment=round(waited, 1),
        )
        replaced, self.consumer = self.consumer, self._new_consumer()
        self._commits_sent = self._commits_answered = 0
        self._lost_at = time.monotonic()
        self._rejoin_wait = min(2 * self._rejoin_wait, MAX_REJOIN_WAIT_SECONDS)
        self._consumer_replaced.inc()
        self._subscribe()
        # Closing leaves the group, which a consumer that cannot rejoin may never finish doing.
        threading.Thread(
            target=_close_quietly, args=(replaced,), name="close-replaced-consumer", daemon=True
        ).start()

    def _wait_seconds(self) -> float:
        """How long the loop may wait for input: with nothing in flight, up to `batch_wait_seconds`;
        with everything in flight acknowledged, until its commit is due; else not at all."""
        if self._in_flight is None:
            return self.settings.runtime.batch_wait_seconds
        if self._in_flight_acknowledged:
            if self._commit_would_not_wait():
                return max(0.0, self._next_commit_at - time.monotonic())
            # Two commits unanswered: their answers come with a poll.
            return ACKNOWLEDGEMENT_CHECK_SECONDS
        return 0.0

    def _commit_due(self) -> bool:
        return time.monotonic() >= self._next_commit_at

    def _messages_in_hand(self, wait_seconds: float) -> list[Message]:
        """Up to a batch of what has been fetched; waits (up to `wait_seconds`) only when nothing
        has, until one arrives."""
        batch_size = self.settings.runtime.batch_size
        messages = self.consumer.consume(num_messages=batch_size, timeout=0)
        if messages or wait_seconds <= 0:
            return messages
        first = self.consumer.poll(wait_seconds)
        if first is None:
            return []
        if batch_size == 1:
            return [first]
        return [first, *self.consumer.consume(num_messages=batch_size - 1, timeout=0)]

    def _close(self) -> None:
        self._watchdog.stop()
        remaining = self.output.close(self.settings.runtime.shutdown_timeout_seconds)
        self._confirm_commits(None)
        self.consumer.close()
        if self.spec.sink is not None:
            self.spec.sink.close()
        log(logger, "stopped", worker=self.spec.name, unflushed=remaining)

    # -- one batch -------------------------------------------------------------------------------

    def _process_batch(self, messages: Sequence[Message]) -> None:
        consumed = [message for message in messages if message.error() is None]
        if len(consumed) < len(messages):
            for message in messages:
                self._is_consumer_error(message)
        if not consumed:
            return
        self._watchdog.batch_started()
        try:
            self._run_batch(consumed)
        finally:
            self._watchdog.batch_finished()

    def _run_batch(self, consumed: Sequence[Message]) -> None:
        origins: list[Origin] = []
        try:
            results = self._handle_all(consumed)
            origins = [result.origin for result in results]
            results = self._write_to_sink(results)
        except DependencyUnavailable as error:
            # Nothing of this batch has been produced yet: all of it is retried.
            if self._complete_in_flight(also_unfinished=origins or _origins(consumed)):
                self._pause.retry_later(self.consumer, origins or _origins(consumed), error)
            return
        except Exception as error:
            # Not the message's fault as far as anyone knows: a bug of the sink must not throw good
            # data away, nor crash the worker into a restart loop. Retried, loudly.
            logger.exception("sink failed", extra={"fields": {"worker": self.spec.name}})
            if self._complete_in_flight(also_unfinished=origins or _origins(consumed)):
                self._pause.retry_later(self.consumer, origins or _origins(consumed), error)
            return
        try:
            self._produce(results)
        except OutputsNotAcknowledged as error:
            # What is in flight went through the same producer, which forgets it: it is retried too.
            unfinished = [*self._in_flight.origins, *origins] if self._in_flight is not None else origins
            self._in_flight = None
            self._sent.clear()
            self.output.abandon(error)
            self._pause.retry_later(self.consumer, unfinished, error)
            return
        self._in_flight_acknowledged = False
        if self._in_flight is None:
            self._in_flight = InFlight(results, origins)
        else:
            self._in_flight.add(results, origins)
        if len(self._in_flight.origins) >= self._messages_in_flight:
            self._complete_in_flight()

    def _complete_in_flight(self, also_unfinished: Sequence[Origin] = ()) -> bool:
        """Waits for the broker to acknowledge the outputs of the batches in flight, then commits
        their offsets. False if they were not acknowledged: those batches, and the messages of
        `also_unfinished` (handled since, not produced), are rewound and retried after a pause."""
        batch, self._in_flight = self._in_flight, None
        if batch is None:
            return True
        self._next_commit_at = time.monotonic() + self._commit_interval
        try:
            self._commit(batch.origins)
        except OutputsNotAcknowledged as error:
            self._sent.clear()
            self.output.abandon(error)
            self._pause.retry_later(self.consumer, [*batch.origins, *also_unfinished], error)
            return False
        self._finished(batch.results)
        return True

    def _handle_all(self, consumed: Sequence[Message]) -> list[MessageResult]:
        self._consumed.inc(len(consumed))
        results: list[MessageResult] = []
        durations: list[float] = []
        clock, handle = time.perf_counter, self._handle
        fallbacks = handle.fallbacks
        try:
            for message in consumed:
                started = clock()
                results.append(handle(message))
                durations.append(clock() - started)
        finally:
            observe_many(self._handler_seconds, durations)
            if handle.fallbacks > fallbacks:
                self._fast_path_fallbacks.inc(handle.fallbacks - fallbacks)
        return results

    def _write_to_sink(self, results: list[MessageResult]) -> list[MessageResult]:
        """The batch's side effect, before anything is produced; events the sink refuses are rejected."""
        sink = self.spec.sink
        accepted = [index for index, result in enumerate(results) if result.processed is not None]
        if sink is None or not accepted:
            return results
        started = time.perf_counter()
        batch = [results[index].processed for index in accepted]
        refused = sink.write([processed for processed in batch if processed is not None])
        self.metrics.sink_seconds.labels(self.spec.name).observe(time.perf_counter() - started)
        for position, error in refused.items():
            index = accepted[position]
            results[index] = results[index].rejected(error.reason, error)
        return results

    def _produce(self, results: Sequence[MessageResult]) -> None:
        if self.transactional:
            self.output.begin()
        send, sent = self.output.send, self._sent
        for result in results:
            if result.rejection is None:
                try:
                    for topic, key, value in result.encoded:
                        send(topic, key, value, OUTPUT_HEADERS)
                        sent[(topic, None)] += 1
                    continue
                except ProduceRefused as error:
                    # Outputs of this message produced before the refused one stay (at least once).
                    result = result.rejected(OUTPUT_REFUSED, error)
            self._dead_letter(result)

    def _dead_letter(self, result: MessageResult) -> None:
        assert result.rejection is not None
        message, origin = result.message, result.origin
        reason, error = result.rejection.reason, result.rejection.error
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
            result.headers, origin, worker=self.spec.name, reason=reason, error=error
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
                raise OutputsNotAcknowledged(f"the dead letter was refused: {refused}") from refused

    def _send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers, reason: str | None
    ) -> None:
        self.output.send(topic, key, value, headers)
        self._sent[(topic, reason)] += 1

    def _commit(self, finished: Sequence[Origin]) -> None:
        offsets = next_offsets(finished)
        if self.transactional:
            self.output.commit(offsets, self.consumer.consumer_group_metadata())
            return
        try:
            self.output.acknowledge(120)
        except ProduceRefused as refused:
            # Which message of the batch the broker refused is not known: the batch is retried.
            raise OutputsNotAcknowledged(f"the broker refused an output: {refused}") from refused
        if offsets:
            # Two commits in flight at most: while both are unanswered, this one waits. (An answer is
            # only seen at the next consume, after the next batch is produced: with one, nearly
            # every commit waited for a round trip.)
            # librdkafka calls on_commit for asynchronous commits only, so only they are counted.
            try:
                if self._commit_would_not_wait():
                    self.consumer.commit(offsets=offsets, asynchronous=True)
                    self._commits_sent += 1
                else:
                    self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as error:
                # Outputs are acknowledged; the worst outcome is that this batch is processed again.
                log(logger, "commit_failed", logging.WARNING, worker=self.spec.name, error=str(error))
                return
            for offset in offsets:
                self._uncertain_commits[(offset.topic, offset.partition)] = offset.offset

    def _commit_would_not_wait(self) -> bool:
        return self._commits_sent - self._commits_answered < COMMITS_IN_FLIGHT

    def _on_commit(self, error: KafkaError | None, _partitions: list[TopicPartition]) -> None:
        self._commits_answered += 1
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            log(logger, "commit_failed", logging.WARNING, worker=self.spec.name, error=str(error))

    def _confirm_commits(self, partitions: Iterable[TopicPartition] | None) -> None:
        """Commits synchronously the offsets last committed asynchronously (of `partitions`, or all):
        before partitions go to another member, or the consumer closes."""
        wanted = None if partitions is None else {(p.topic, p.partition) for p in partitions}
        confirm = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in self._uncertain_commits.items()
            if wanted is None or (topic, partition) in wanted
        ]
        if not confirm:
            return
        for offset in confirm:
            self._uncertain_commits.pop((offset.topic, offset.partition), None)
        try:
            self.consumer.commit(offsets=confirm, asynchronous=False)
        except KafkaException as error:
            log(logger, "commit_failed", logging.WARNING, worker=self.spec.name, error=str(error))

    def _finished(self, results: Sequence[MessageResult]) -> None:
        """After the commit: count what the broker acknowledged, and how old the events were."""
        for (topic, reason), count in self._sent.items():
            if reason is None:
                self.metrics.produced.labels(self.spec.name, topic).inc(count)
            else:
                self.metrics.dead_letters.labels(self.spec.name, self.spec.input_topic, reason).inc(count)
        self._sent.clear()
        self._pause.succeeded()
        now = datetime.now(UTC)
        ages = [
            (now - result.event_time).total_seconds()
            for result in results
            if result.rejection is None and result.event_time is not None
        ]
        observe_many(self._event_age, ages)

    # -- rebalance -------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._lost_at = None
        self._rejoin_wait = self.settings.runtime.rejoin_timeout_seconds
        log(logger, "partitions_assigned", worker=self.spec.name, partitions=_describe(partitions))
        self._pause.on_assign(consumer, partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The batches in flight are acknowledged and committed first; then revoked partitions have
        # nothing pending but an asynchronous commit, confirmed here so that the next owner starts
        # after it.
        log(logger, "partitions_revoked", worker=self.spec.name, partitions=_describe(partitions))
        batch, self._in_flight = self._in_flight, None
        if batch is not None:
            try:
                self._commit(batch.origins)
                self._finished(batch.results)
            except OutputsNotAcknowledged as error:
                # Not committed: whoever is assigned these partitions next reads the batch again
                # from the last commit (the eager protocol revokes every partition at once).
                self._sent.clear()
                self.output.abandon(error)
                log(logger, "in_flight_not_acknowledged", logging.WARNING, worker=self.spec.name)
        self._confirm_commits(partitions)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._lost_at = time.monotonic()
        # Another member owns them already: their offsets are no longer ours to commit, nor those
        # of the batches in flight (their outputs are sent; the next owner reads them again).
        if self._in_flight is not None:
            self._in_flight = None
            self._sent.clear()
        for partition in partitions:
            self._uncertain_commits.pop((partition.topic, partition.partition), None)
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


def _close_quietly(consumer: Consumer) -> None:
    try:
        consumer.close()
    except (KafkaException, RuntimeError) as error:
        log(logger, "replaced_consumer_close_failed", logging.WARNING, error=str(error))


def _origins(messages: Iterable[Message]) -> list[Origin]:
    return [origin_of(message) for message in messages]


def _describe(partitions: Iterable[TopicPartition]) -> list[str]:
    return [f"{p.topic}[{p.partition}]" for p in partitions]
