"""The only place librdkafka configuration dictionaries are built."""

from __future__ import annotations

from typing import Any

from workers.config import Settings

# A dead letter carries the original value, which may be larger than the worker accepts, plus
# headers: dead-letter topics, and the producer, take larger messages than Kafka's default 1 MiB.
DEAD_LETTER_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def _connection(settings: Settings) -> dict[str, Any]:
    security = settings.kafka_security
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": security.protocol,
    }
    optional = {
        "sasl.mechanism": security.sasl_mechanism,
        "sasl.username": security.sasl_username,
        "sasl.password": security.sasl_password.get_secret_value() if security.sasl_password else None,
        "ssl.ca.location": security.ssl_ca_location,
        "ssl.certificate.location": security.ssl_certificate_location,
        "ssl.key.location": security.ssl_key_location,
        "ssl.key.password": security.ssl_key_password.get_secret_value()
        if security.ssl_key_password
        else None,
    }
    config.update({key: str(value) for key, value in optional.items() if value is not None})
    return config


def _with_passthrough(settings: Settings, config: dict[str, Any]) -> dict[str, Any]:
    return {**config, **settings.kafka_client_config}


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    config = {
        **_connection(settings),
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        # Offsets move only when the runtime commits them explicitly, after outputs are acknowledged.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": "read_committed",
        # librdkafka's default prefetch (64 MB, overshot by a fetch) is most of a worker's memory
        # when it reads a backlog; 16 MB is tens of thousands of messages, far more than a batch.
        "queued.max.messages.kbytes": 16384,
        **_fetch_pacing(settings.runtime.fetch_backoff_ms),
        "statistics.interval.ms": settings.runtime.statistics_interval_ms,
        **extra,
    }
    return _with_passthrough(settings, config)


def _fetch_pacing(backoff_ms: int) -> dict[str, Any]:
    """librdkafka fetches again as soon as a fetch is answered, and the broker answers as soon as it
    holds a message: at a moderate rate, a fetch per message or two, each small batch then costing a
    produce request and a commit. At 5,000 events/s that doubled the broker's CPU and the worker's,
    and the contention set the latency's tail. With `queued.min.messages` at 1, the consumer waits
    `backoff_ms` (fetch.queue.backoff.ms) to fetch again while anything it fetched is not yet
    taken: a steady input arrives in batches, at most that much later. An idle consumer still
    waits on the broker's long poll, and a lone message is fetched at once.

    fetch.queue.backoff.ms also paces a full prefetch queue; its default, a second, stalled a fast
    consumer of the 16 MB queue (a bare copy loop fell from 50k to 30k msg/s), hence 10 ms without
    pacing."""
    if backoff_ms == 0:
        return {"fetch.queue.backoff.ms": 10}
    return {"queued.min.messages": 1, "fetch.queue.backoff.ms": backoff_ms}


def producer_config(settings: Settings, transactional_id: str | None = None, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        **_connection(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": DEAD_LETTER_MAX_MESSAGE_BYTES + 65536,
        **extra,
    }
    if transactional_id:
        config["transactional.id"] = transactional_id
    return _with_passthrough(settings, config)


def admin_config(settings: Settings) -> dict[str, Any]:
    return _with_passthrough(settings, _connection(settings))
