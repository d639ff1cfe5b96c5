"""A trainer's view of `hitl.training.examples`: nothing but the schema file, fastavro and a consumer.

Deliberately imports nothing from the project: this is what a consumer outside it writes.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer
from fastavro.schema import fingerprint, to_parsing_canonical_form

MARKER = b"\xc3\x01"


def read_training_examples(
    bootstrap: str, topic: str, schema_file: Path, *, expect: int, timeout: float = 60
) -> dict[str, dict[str, Any]]:
    """Every example on the topic, by key (the example id); the last one read wins."""
    schema = fastavro.parse_schema(json.loads(schema_file.read_text()))
    expected_fingerprint = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"trainer-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    examples: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(examples) < expect and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                if message.error():
                    continue
                value = message.value() or b""
                if value[:2] != MARKER or value[2:10] != expected_fingerprint:
                    raise ValueError(f"not a TrainingExample in single-object encoding: {value[:10]!r}")
                example = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)
                examples[(message.key() or b"").decode()] = example  # type: ignore[assignment]
    finally:
        consumer.close()
    return examples
