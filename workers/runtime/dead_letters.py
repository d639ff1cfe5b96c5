"""Dead letters: the original message, untouched, plus headers that say why and where it came from."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from workers.contracts import Headers
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


# A record's framing around its key, value and headers, with room to spare (Kafka's record batch
# header is 61 bytes, each record and header adds a few varints).
RECORD_OVERHEAD_BYTES = 1024
HEADER_OVERHEAD_BYTES = 16


def record_bytes(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """An upper bound of a record's size as the producer and the broker count it."""
    header_bytes = sum(
        len(name.encode()) + len(data or b"") + HEADER_OVERHEAD_BYTES for name, data in headers
    )
    return RECORD_OVERHEAD_BYTES + len(key or b"") + len(value or b"") + header_bytes


def fit_dead_letter(
    key: bytes | None, value: bytes | None, headers: Headers, limit: int
) -> tuple[bytes | None, Headers]:
    """The dead letter's value and headers, the value cut to its first bytes if the whole would
    exceed `limit`; then headers say so and identify the original (its size and SHA-256)."""
    if value is None or record_bytes(key, value, headers) <= limit:
        return value, headers
    marked = headers + _truncation_headers(value)
    room = limit - record_bytes(key, b"", marked)
    return value[: max(room, 0)], marked


def bare_dead_letter(value: bytes | None, headers: Headers) -> tuple[bytes | None, Headers]:
    """The last resort when even a truncated dead letter is refused: no value, and of the headers
    only the failure's own, which are small."""
    failure = [(name, data) for name, data in headers if name.startswith(HEADER_PREFIX)]
    marks = _truncation_headers(value) if value is not None else []
    return None, [*failure, *marks, (HEADER_PREFIX + "headers.dropped", b"true")]


def _truncation_headers(value: bytes) -> Headers:
    return [
        (HEADER_PREFIX + "value.truncated", b"true"),
        (HEADER_PREFIX + "value.original_bytes", str(len(value)).encode()),
        (HEADER_PREFIX + "value.sha256", hashlib.sha256(value).hexdigest().encode()),
    ]
