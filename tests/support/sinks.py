"""Driving a worker's sink directly, as the runtime does."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from workers.errors import DependencyUnavailable, RejectedEvent
from workers.runtime.worker import Processed, Sink


def write_when_back(
    sink: Sink, batch: Sequence[Processed], timeout: float = 60
) -> Mapping[int, RejectedEvent]:
    """Retries the write as the runtime would, until the sink's service answers again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return sink.write(batch)
        except DependencyUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
