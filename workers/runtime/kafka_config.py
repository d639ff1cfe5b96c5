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
        # A full prefetch queue postpones the next fetch by fetch.queue.backoff.ms, by default a
        # second, which with the smaller queue stalled a fast consumer (a bare copy loop fell from
        # 50k to 30k msg/s); 10 ms keeps it fed.
        "queued.max.messages.kbytes": 16384,
        "fetch.queue.backoff.ms": 10,
        "statistics.interval.ms": settings.runtime.statistics_interval_ms,
        **extra,
    }
    return _with_passthrough(settings, config)


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
