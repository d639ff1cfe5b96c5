"""Events onto their topic, each acknowledged by the broker before the request is answered.

One producer for the whole gateway, built from the runtime's producer configuration (so the
security settings apply), with a thread that serves its delivery callbacks. librdkafka gives up on
a message after the same bounded wait the request waits (`message.timeout.ms`), so a request
answered 503 leaves no message behind that could still be delivered long after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from workers.config import Settings
from workers.contracts import AVRO_CONTENT_TYPE, EncodeError, encode
from workers.errors import DependencyUnavailable
from workers.gateway.intake import InputEvent, RequestRejected
from workers.logs import log
from workers.runtime.kafka_config import producer_config
from workers.runtime.produce_errors import is_fatal, is_message_fault, kafka_error

logger = logging.getLogger("hitl.gateway")

HEADERS: list[tuple[str, str | bytes | None]] = [("content-type", AVRO_CONTENT_TYPE.encode())]
_SIZE_FAULTS = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG_SIZE, KafkaError.RECORD_LIST_TOO_LARGE}
)


DeliveryCallback = Callable[[KafkaError | None, Message], None]


class KafkaUnavailable(DependencyUnavailable):
    """The broker did not acknowledge every event in time: the request is answered 503."""


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.gateway.ack_timeout_seconds
        timeouts: dict[str, object] = {"message.timeout.ms": int(self._timeout * 1000)}
        self._config = producer_config(settings, None, **timeouts)
        self._producer = Producer(self._config)
        self._stopped = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="gateway-producer", daemon=True)
        self._poller.start()

    async def publish(self, topic: str, events: Sequence[InputEvent]) -> None:
        """Returns once the broker acknowledged every event; raises KafkaUnavailable or RequestRejected."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        acknowledgements: list[asyncio.Future[KafkaError | None]] = []
        for index, event in enumerate(events):
            acknowledgement: asyncio.Future[KafkaError | None] = loop.create_future()
            await self._produce(topic, event, index, self._on_delivery(loop, acknowledgement), deadline)
            acknowledgements.append(acknowledgement)
        # A little past librdkafka's own timeout, so that its verdict normally arrives first.
        _done, pending = await asyncio.wait(acknowledgements, timeout=max(deadline - loop.time(), 0) + 1.0)
        if pending:
            raise KafkaUnavailable(f"{len(pending)} of {len(events)} events not acknowledged in time")
        for index, acknowledgement in enumerate(acknowledgements):
            error = acknowledgement.result()
            if error is not None:
                raise self._classified(error, index)

    async def _produce(
        self, topic: str, event: InputEvent, index: int, on_delivery: DeliveryCallback, deadline: float
    ) -> None:
        try:
            value = encode(event)
        except EncodeError as error:
            raise RequestRejected(422, f"event [{index}] cannot be encoded: {error}") from error
        loop = asyncio.get_running_loop()
        while True:
            try:
                self._producer.produce(
                    topic,
                    key=str(event.event_id).encode(),
                    value=value,
                    headers=HEADERS,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                # The producer's queue is full (the broker is slow or away): wait for room, bounded.
                if loop.time() > deadline:
                    raise KafkaUnavailable("the producer's queue stayed full") from None
                await asyncio.sleep(0.05)
            except KafkaException as exception:
                raise self._classified(kafka_error(exception), index) from exception

    @staticmethod
    def _on_delivery(
        loop: asyncio.AbstractEventLoop, acknowledgement: asyncio.Future[KafkaError | None]
    ) -> DeliveryCallback:
        def settle(error: KafkaError | None) -> None:
            if not acknowledgement.done():
                acknowledgement.set_result(error)

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            # RuntimeError: the server stopped meanwhile, and nobody waits for the answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, error)

        return on_delivery

    def _classified(self, error: KafkaError | None, index: int) -> Exception:
        if is_message_fault(error) and error is not None:
            status = 413 if error.code() in _SIZE_FAULTS else 422
            return RequestRejected(status, f"Kafka refused event [{index}]: {error.str()}")
        if is_fatal(error):
            self._replace_producer()
        return KafkaUnavailable(f"event [{index}] not stored: {error.str() if error else 'unknown error'}")

    def _replace_producer(self) -> None:
        log(logger, "producer_replaced", logging.WARNING)
        old, self._producer = self._producer, Producer(self._config)
        old.flush(0)

    def _poll(self) -> None:
        while not self._stopped.is_set():
            self._producer.poll(0.1)

    def close(self) -> None:
        self._stopped.set()
        self._poller.join(timeout=5)
        self._producer.flush(self._timeout)
        self._producer.close()
