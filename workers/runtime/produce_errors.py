"""Errors from producing, classified once: the message's own fault, or trouble with Kafka."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

# The broker or the producer refuses this message whatever happens: producing it again fails the
# same way, so the batch must not be retried for it.
MESSAGE_FAULTS = frozenset(
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


class ProduceRefused(Exception):
    """produce() refused this message for what it is (too large, say)."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(error.str())
        self.error = error


def kafka_error(exception: KafkaException) -> KafkaError | None:
    first = exception.args[0] if exception.args else None
    return first if isinstance(first, KafkaError) else None


def is_message_fault(error: KafkaError | None) -> bool:
    """Anything else (a queue timeout, a fenced or fatal producer, a topic missing) is Kafka's trouble:
    the batch is retried, never skipped."""
    return error is not None and error.code() in MESSAGE_FAULTS and not error.fatal()


def is_fatal(error: KafkaError | None) -> bool:
    """The producer cannot go on (fenced, or an idempotence guarantee lost): it must be replaced."""
    return error is not None and error.fatal()
