"""A message handled as the runtime handles it, by a worker's fast path and by its reference path
alone, for the fast-path equality tests."""

from __future__ import annotations

from typing import Any

from workers.contracts import EventCodec
from workers.runtime.batch import BatchHandler, MessageResult
from workers.runtime.worker import WorkerSpec

MAX_OUTPUT_BYTES = 1_000_000


def handled_both_ways(
    spec: WorkerSpec, message: Any, max_output_bytes: int = MAX_OUTPUT_BYTES
) -> tuple[MessageResult, MessageResult]:
    """The message's result with the fast codec (and the spec's fast path), and with the reference
    codec alone."""
    fast = BatchHandler(spec, EventCodec(), max_output_bytes)(message)
    reference = BatchHandler(spec, EventCodec(fast=False), max_output_bytes)(message)
    assert reference.processed is not None or reference.rejection is not None
    return fast, reference


def produced_or_dead_letter(result: MessageResult) -> tuple[str, Any]:
    """What the runtime does with the message: the outputs it produces, or its dead letter."""
    if result.rejection is not None:
        return ("dead letter", (result.rejection.reason, str(result.rejection.error)))
    return ("produced", [(e.topic, e.key, e.value) for e in result.encoded])
