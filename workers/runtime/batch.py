"""One message of a batch from bytes to what the runtime must do with it: produce its encoded
outputs, or dead-letter it with a reason. Results are immutable; a later phase that rejects a
message (the sink, the producer) makes a new result with `rejected`.

A worker's fast path (`worker.FastPath`) is tried first; a message it leaves takes the reference
path (decode into the model, handle, encode), which alone decides rejections."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from confluent_kafka import Message

from workers.contracts import DecodeError, EncodeError, EventCodec, Headers
from workers.contracts.plain import PlainEvent
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.reasons import Reason
from workers.runtime.messages import headers_of, origin_of
from workers.runtime.worker import FastPath, Origin, PlainHandled, PlainOutput, Processed, Routed, WorkerSpec

logger = logging.getLogger("hitl.runtime")

OUTPUT_INVALID = Reason.OUTPUT_INVALID
OUTPUT_TOO_LARGE = Reason.OUTPUT_TOO_LARGE
HANDLER_ERROR = Reason.HANDLER_ERROR


# Named tuples: as immutable as frozen dataclasses, and built in a third of the time, once or
# twice per message.
class Encoded(NamedTuple):
    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    error: BaseException


class MessageResult(NamedTuple):
    """A message after decoding and handling: what it became, and its encoded outputs; or why it
    is rejected."""

    message: Message
    origin: Origin
    headers: Headers
    """The message's headers, read once (a second read of unreadable ones crashes the client)."""
    processed: Processed | None = None
    """What the handler decided, for the sink; on the fast path, the plain event for the sink, or
    None for a worker without one."""
    encoded: tuple[Encoded, ...] = ()
    rejection: Rejection | None = None
    event_time: datetime | None = None
    """When the input event happened, for the event-age metric."""

    def rejected(self, reason: str, error: BaseException) -> MessageResult:
        return self._replace(rejection=Rejection(reason, error), encoded=())


class BatchHandler:
    """Decodes a message into one of the spec's input types, runs the handler, encodes its outputs."""

    def __init__(self, spec: WorkerSpec, codec: EventCodec, max_output_bytes: int) -> None:
        self.spec = spec
        self.codec = codec
        self.max_output_bytes = max_output_bytes
        self.fast_path = spec.fast_path if codec.fast else None
        self._has_sink = spec.sink is not None
        self.fallbacks = 0
        """Messages the fast path has left to the reference path."""
        # The topic of each plain output type the fast path has made.
        self._plain_topics: dict[type[PlainEvent], str] = {}

    def __call__(self, message: Message) -> MessageResult:
        try:
            headers = headers_of(message)
        except DecodeError as error:
            rejection = Rejection(str(error.reason), error)
            return MessageResult(message, origin_of(message), [], rejection=rejection)
        if self.fast_path is not None:
            result = self._fast(message, headers, self.fast_path)
            if result is not None:
                return result
            self.fallbacks += 1
        origin = origin_of(message)
        try:
            event = self.codec.decode(message.value(), headers, self.spec.input_types)
            processed = self.spec.handle(event, origin)
            encoded = tuple(self._encode(output) for output in processed.outputs)
            return MessageResult(message, origin, headers, processed, encoded, event_time=event.event_time)
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

    def _fast(self, message: Message, headers: Headers, fast: FastPath) -> MessageResult | None:
        """The message's result by the fast path, or None to take the reference path."""
        plain = self.codec.decode_plain(message.value(), headers, fast.input)
        if plain is None:
            return None
        # Only a sink or the fast handler reads the origin's time: otherwise it is left out.
        origin = origin_of(message, timestamped=self._has_sink or fast.needs_origin)
        try:
            handled = fast.handler(plain, origin) if fast.needs_origin else fast.handler(plain)
        except Exception:
            return None  # the reference path rejects it, with its reason
        if handled is None:
            return None
        outputs, effect = (
            (handled.outputs, handled.effect) if isinstance(handled, PlainHandled) else (handled, None)
        )
        default_key = plain.key.encode()
        encoded = []
        for output in outputs:
            event, key = (
                (output.event, output.key.encode())
                if isinstance(output, PlainOutput)
                else (output, default_key)
            )
            value = self._encode_plain(event)
            if value is None:
                return None
            encoded.append(Encoded(self._plain_topics[type(event)], key, value))
        processed = Processed(plain, origin, effect=effect) if self._has_sink else None
        return MessageResult(message, origin, headers, processed, tuple(encoded), event_time=plain.event_time)

    def _encode_plain(self, output: PlainEvent) -> bytes | None:
        """Its Avro, or None for an output that its spec does not declare, the writer cannot write,
        or that is too large: the reference path decides those."""
        if type(output) not in self._plain_topics:
            topic = self.spec.outputs.get(output.EVENT_TYPE)
            if topic is None:
                return None
            self._plain_topics[type(output)] = topic
        value = self.codec.encode_plain(output)
        if value is None or len(value) > self.max_output_bytes:
            return None
        return value
