"""One message of a batch from bytes to what the runtime must do with it: produce its encoded
outputs, or dead-letter it with a reason. Results are immutable; a later phase that rejects a
message (the sink, the producer) makes a new result with `rejected`."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from confluent_kafka import Message

from workers.contracts import DecodeError, EncodeError, EventCodec, Headers
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.reasons import Reason
from workers.runtime.messages import headers_of, origin_of
from workers.runtime.worker import Origin, Processed, Routed, WorkerSpec

logger = logging.getLogger("hitl.runtime")

OUTPUT_INVALID = Reason.OUTPUT_INVALID
OUTPUT_TOO_LARGE = Reason.OUTPUT_TOO_LARGE
HANDLER_ERROR = Reason.HANDLER_ERROR


@dataclass(frozen=True, slots=True)
class Encoded:
    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    error: BaseException


@dataclass(frozen=True, slots=True)
class MessageResult:
    """A message after decoding and handling: what it became, and its encoded outputs; or why it
    is rejected."""

    message: Message
    origin: Origin
    headers: Headers
    """The message's headers, read once (a second read of unreadable ones crashes the client)."""
    processed: Processed | None = None
    encoded: tuple[Encoded, ...] = ()
    rejection: Rejection | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None and self.processed is not None

    def rejected(self, reason: str, error: BaseException) -> MessageResult:
        return dataclasses.replace(self, rejection=Rejection(reason, error), encoded=())


class BatchHandler:
    """Decodes a message into one of the spec's input types, runs the handler, encodes its outputs."""

    def __init__(self, spec: WorkerSpec, codec: EventCodec, max_output_bytes: int) -> None:
        self.spec = spec
        self.codec = codec
        self.max_output_bytes = max_output_bytes

    def __call__(self, message: Message) -> MessageResult:
        origin = origin_of(message)
        try:
            headers = headers_of(message)
        except DecodeError as error:
            return MessageResult(message, origin, [], rejection=Rejection(str(error.reason), error))
        try:
            event = self.codec.decode(message.value(), headers, self.spec.input_types)
            processed = self.spec.handle(event, origin)
            encoded = tuple(self._encode(output) for output in processed.outputs)
            return MessageResult(message, origin, headers, processed, encoded)
        except DependencyUnavailable:
            raise
        except (DecodeError, RejectedEvent) as error:
            return MessageResult(message, origin, headers, rejection=Rejection(str(error.reason), error))
        except EncodeError as error:
            return MessageResult(message, origin, headers, rejection=Rejection(OUTPUT_INVALID, error))
        except Exception as error:
            logger.exception("handler failed", extra={"fields": {"worker": self.spec.name}})
            return MessageResult(message, origin, headers, rejection=Rejection(HANDLER_ERROR, error))

    def _encode(self, output: Routed) -> Encoded:
        event, topic = output.event, output.topic
        value = self.codec.encode(event)
        if len(value) > self.max_output_bytes:
            # The broker would refuse it, and the batch would be retried forever.
            raise RejectedEvent(
                OUTPUT_TOO_LARGE,
                f"the {type(event).__name__} for {topic} is {len(value)} bytes, "
                f"above HITL_RUNTIME__MAX_OUTPUT_BYTES={self.max_output_bytes}",
            )
        return Encoded(topic, output.key.encode(), value)
