"""Typed views of a consumed confluent-kafka message, whose accessors are all optional in its stubs."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import Message

from workers.contracts import DecodeError, Headers
from workers.reasons import Reason
from workers.runtime.worker import Origin


def origin_of(message: Message, *, timestamped: bool = True) -> Origin:
    """Where the message was read; without its time if not `timestamped` (for whoever reads only
    its position: a third of the cost)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a consumed message without a position")
    timestamp = None
    if timestamped:
        _kind, millis = message.timestamp()
        timestamp = datetime.fromtimestamp(millis / 1000, UTC) if millis > 0 else None
    return Origin(topic, partition, offset, timestamp)


def headers_of(message: Message) -> Headers:
    """The message's headers; DecodeError `invalid_headers` when the client cannot read them (a
    header key that is not UTF-8 makes confluent-kafka raise SystemError). Read them once: asking
    such a message for its headers a second time crashes the process."""
    try:
        headers = message.headers() or []
    except Exception as error:
        raise DecodeError(Reason.INVALID_HEADERS, f"the headers cannot be read: {error!r}") from error
    items = headers.items() if isinstance(headers, dict) else headers
    return [(name, value.encode() if isinstance(value, str) else value) for name, value in items]
