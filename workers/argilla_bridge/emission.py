"""Resolutions onto `hitl.review.resolved`, keyed by task id, each acknowledged by the broker before
the caller marks its record as emitted."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from workers.config import Settings
from workers.contracts import AVRO_CONTENT_TYPE, ReviewResolution, encode
from workers.errors import DependencyUnavailable
from workers.runtime.kafka_config import producer_config

# Below Argilla's 20 s webhook timeout, so a broker outage answers the call with 503, not a timeout.
FLUSH_TIMEOUT_SECONDS = 15.0


class ResolutionEmitter:
    def __init__(self, settings: Settings, topic: str | None = None) -> None:
        self.topic = topic or settings.topics.review_resolved
        self._producer = Producer(producer_config(settings))

    def emit(self, resolution: ReviewResolution) -> None:
        """Produces the resolution and waits for the broker's acknowledgement."""
        errors: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error)

        while True:
            try:
                self._producer.produce(
                    self.topic,
                    key=str(resolution.task_id).encode(),
                    value=encode(resolution),
                    headers=[("content-type", AVRO_CONTENT_TYPE.encode())],
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        unacknowledged = self._producer.flush(FLUSH_TIMEOUT_SECONDS)
        if unacknowledged or errors:
            raise DependencyUnavailable(
                f"resolution of task {resolution.task_id} not acknowledged by Kafka: "
                f"{errors[:1] or 'timeout'}"
            )

    def close(self) -> None:
        self._producer.flush(FLUSH_TIMEOUT_SECONDS)
