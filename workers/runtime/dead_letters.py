"""Dead letters: the original message, untouched, plus headers that say why and where it came from."""

from __future__ import annotations

from datetime import UTC, datetime

from workers.runtime.messages import Headers
from workers.runtime.worker import Origin

HEADER_PREFIX = "hitl.dlq."


def dead_letter_headers(
    original: Headers, origin: Origin, *, worker: str, reason: str, error: BaseException
) -> Headers:
    failure = {
        "reason": reason,
        "error.class": type(error).__name__,
        "error.message": str(error)[:4000],
        "source.topic": origin.topic,
        "source.partition": str(origin.partition),
        "source.offset": str(origin.offset),
        "worker": worker,
        "failed_at": datetime.now(UTC).isoformat(),
    }
    return original + [(HEADER_PREFIX + name, value.encode()) for name, value in failure.items()]


def read_dead_letter_headers(headers: Headers | None) -> dict[str, str]:
    """The failure headers of a dead letter, without their prefix."""
    return {
        name.removeprefix(HEADER_PREFIX): value.decode()
        for name, value in headers or []
        if name.startswith(HEADER_PREFIX) and value is not None
    }
