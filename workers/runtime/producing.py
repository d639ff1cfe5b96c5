"""The one way this project produces to Kafka: the runtime's batches, the collector's resolutions,
the demo's sample events all go through `KafkaOutput`.

It owns what every producer here must get right once: its configuration comes from
`kafka_config.producer_config` (security settings included); a full local queue is drained and
the message tried again; produce() refusing a message for what it is (too large) raises
`ProduceRefused`, any other failure `OutputsNotAcknowledged`; and "sent" means acknowledged by the
broker, checked by `acknowledge()`. In transactions mode it begins, commits and aborts, and
replaces itself when librdkafka says the producer cannot go on (fenced, or a failed abort).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from workers.config import Settings
from workers.contracts import Headers
from workers.errors import DependencyUnavailable
from workers.logs import log
from workers.runtime.kafka_config import producer_config
from workers.runtime.produce_errors import ProduceRefused, is_fatal, is_message_fault, kafka_error

logger = logging.getLogger("hitl.runtime")


class OutputsNotAcknowledged(DependencyUnavailable):
    """Kafka did not take every message: they must be produced again. `fatal` says the producer
    cannot be used again and has to be replaced."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class KafkaOutput:
    def __init__(
        self,
        settings: Settings,
        *,
        transactional_id: str | None = None,
        name: str = "",
        on_replaced: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self._on_replaced = on_replaced
        self.transactional = transactional_id is not None
        self._errors: list[KafkaError] = []
        self._config = producer_config(
            settings,
            transactional_id=transactional_id,
            on_delivery=self._on_delivery,
            **{"delivery.report.only.error": True},
        )
        self.max_message_bytes = int(self._config["message.max.bytes"])
        self._producer = Producer(self._config)
        self._ready = not self.transactional
        self._in_transaction = False

    # -- producing -------------------------------------------------------------------------------

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        """Queues one message; raises ProduceRefused for a message Kafka will never take."""
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers)  # type: ignore[arg-type]
                return
            except BufferError:
                # The local queue is full: let deliveries drain, then try again.
                self._producer.poll(0.1)
            except KafkaException as exception:
                error = kafka_error(exception)
                if error is not None and is_message_fault(error):
                    raise ProduceRefused(error) from exception
                raise OutputsNotAcknowledged(
                    f"produce failed: {exception}", fatal=is_fatal(error)
                ) from exception

    def acknowledge(self, timeout: float) -> None:
        """Waits until the broker has acknowledged everything sent; raises ProduceRefused when the
        broker refused what was sent for what it is (too large for the topic, say), else
        OutputsNotAcknowledged when something was not acknowledged."""
        unacknowledged = self._producer.flush(timeout)
        if unacknowledged or self._errors:
            errors, self._errors = self._errors, []
            if not unacknowledged and all(is_message_fault(error) for error in errors):
                raise ProduceRefused(errors[0])
            raise OutputsNotAcknowledged(
                f"{unacknowledged} messages unacknowledged, delivery errors: {errors[:3]}",
                fatal=any(error.fatal() for error in errors),
            )

    def wait_for_acknowledgements(self, timeout: float) -> bool:
        """Sends what is queued at once and waits up to `timeout` for the broker to acknowledge
        everything sent; True if it has, or if something failed (`acknowledge` then says what)."""
        return self._producer.flush(timeout) == 0 or bool(self._errors)

    @property
    def failed(self) -> bool:
        """Whether a delivery has failed since the last acknowledgement (`acknowledge` says how)."""
        return bool(self._errors)

    def send_and_acknowledge(
        self, messages: Iterable[tuple[str, bytes | None, bytes | None, Headers]], timeout: float
    ) -> None:
        """Sends the messages (topic, key, value, headers) and waits for the broker to take them all."""
        for topic, key, value, headers in messages:
            self.send(topic, key, value, headers)
        self.acknowledge(timeout)

    def serve_events(self) -> None:
        self._producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._errors.append(error)

    # -- transactions ----------------------------------------------------------------------------

    def init_transactions(self) -> None:
        if self.transactional and not self._ready:
            self._producer.init_transactions(30)
            self._ready = True

    def begin(self) -> None:
        try:
            self.init_transactions()
            self._producer.begin_transaction()
        except KafkaException as error:
            raise OutputsNotAcknowledged(
                f"no transaction: {error}", fatal=is_fatal(kafka_error(error))
            ) from error
        self._in_transaction = True

    def commit(self, offsets: Sequence[TopicPartition], group_metadata: Any) -> None:
        """Commits the transaction with the consumer's offsets in it."""
        try:
            if offsets:
                self._producer.send_offsets_to_transaction(list(offsets), group_metadata, 30)
            self._producer.commit_transaction(60)
        except KafkaException as error:
            raise OutputsNotAcknowledged(
                f"transaction not committed: {error}", fatal=is_fatal(kafka_error(error))
            ) from error
        self._in_transaction = False

    def abandon(self, error: OutputsNotAcknowledged) -> None:
        """Forgets what was sent since the last acknowledgement: aborts the transaction, or replaces
        a producer that cannot go on."""
        self._errors.clear()
        if self.transactional and self._in_transaction and not error.fatal:
            try:
                self._producer.abort_transaction(60)
                self._in_transaction = False
                return
            except KafkaException as abort_error:
                log(logger, "abort_failed", logging.WARNING, worker=self.name, error=str(abort_error))
        if error.fatal or self._in_transaction:
            self._replace()

    def _replace(self) -> None:
        old, self._producer = self._producer, Producer(self._config)
        # What the old producer still holds is abandoned: the batch is produced again.
        try:
            old.purge()
            old.flush(0)
        except KafkaException as error:
            log(logger, "purge_failed", logging.WARNING, worker=self.name, error=str(error))
        # With the same transactional id, the new producer's init_transactions fences the old one
        # and aborts whatever it left open.
        self._ready = not self.transactional
        self._in_transaction = False
        self._on_replaced()
        log(logger, "producer_replaced", logging.WARNING, worker=self.name)

    def close(self, timeout: float) -> int:
        """Flushes what is queued; the number of messages still unacknowledged."""
        return int(self._producer.flush(timeout))
