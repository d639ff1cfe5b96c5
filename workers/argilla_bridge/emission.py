"""Resolutions onto `hitl.review.resolved`, keyed by task id, each acknowledged by the broker before
the caller marks its record as emitted; and the records that cannot be resolved onto its
dead-letter topic.

Kafka's refusal of the message itself (too large, an invalid record) is the record's fault: it is
raised as `ResolutionRefused`, a RejectedEvent, and the record alone fails. Only a broker that
cannot be reached or does not answer in time is DependencyUnavailable.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from workers.config import Settings
from workers.contracts import AVRO_CONTENT_TYPE, ReviewResolution, encode
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.reasons import Reason
from workers.runtime.kafka_config import producer_config
from workers.runtime.messages import Headers

# Below Argilla's 20 s webhook timeout, so a broker outage answers the call with 503, not a timeout.
FLUSH_TIMEOUT_SECONDS = 15.0

REFUSED_BY_KAFKA = Reason.REFUSED_BY_KAFKA
# Errors about the message's own content: producing it again can only fail again.
_PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError._INVALID_ARG,
        KafkaError._BAD_MSG,
    }
)


class ResolutionRefused(RejectedEvent):
    """Kafka refused the message for its content; the record is at fault, not the broker."""

    def __init__(self, message: str) -> None:
        super().__init__(REFUSED_BY_KAFKA, message)


class ResolutionEmitter:
    def __init__(
        self, settings: Settings, topic: str | None = None, dead_letter_topic: str | None = None
    ) -> None:
        self.topic = topic or settings.topics.review_resolved
        self.dead_letter_topic = dead_letter_topic or settings.topics.dead_letter_topic(self.topic)
        self._producer = Producer(producer_config(settings))

    def emit(self, resolution: ReviewResolution) -> None:
        """Produces the resolution and waits for the broker's acknowledgement."""
        self._produce(
            self.topic,
            str(resolution.task_id).encode(),
            encode(resolution),
            [("content-type", AVRO_CONTENT_TYPE.encode())],
            f"resolution of task {resolution.task_id}",
        )

    def dead_letter(self, key: bytes | None, value: bytes, headers: Headers) -> None:
        """Produces a dead letter for a record that cannot be resolved, acknowledged by the broker."""
        self._produce(self.dead_letter_topic, key, value, headers, f"dead letter {key!r}")

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: Headers, what: str) -> None:
        errors: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error)

        kafka_headers: list[tuple[str, str | bytes | None]] = list(headers)
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, headers=kafka_headers, on_delivery=on_delivery
                )
                break
            except BufferError:
                self._producer.poll(0.1)
            except KafkaException as error:
                raise _classified(error.args[0] if error.args else None, what) from error
        unacknowledged = self._producer.flush(FLUSH_TIMEOUT_SECONDS)
        if errors:
            raise _classified(errors[0], what)
        if unacknowledged:
            raise DependencyUnavailable(f"{what} not acknowledged by Kafka in {FLUSH_TIMEOUT_SECONDS:g} s")

    def close(self) -> None:
        self._producer.flush(FLUSH_TIMEOUT_SECONDS)


def _classified(error: object, what: str) -> ResolutionRefused | DependencyUnavailable:
    if isinstance(error, KafkaError) and error.code() in _PERMANENT and not error.retriable():
        return ResolutionRefused(f"Kafka refused the {what} ({error.name()}): {error.str()}")
    return DependencyUnavailable(f"{what} not acknowledged by Kafka: {error}")
