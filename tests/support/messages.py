"""A consumed Kafka message as the runtime reads it: a worker's batch handling without a broker."""

from __future__ import annotations


class StoredMessage:
    def __init__(
        self,
        value: bytes,
        headers: list[tuple[str, bytes]],
        *,
        key: bytes = b"",
        topic: str = "bench",
        offset: int = 0,
        timestamp_ms: int = 1_700_000_000_000,
    ) -> None:
        self._value, self._headers, self._key = value, headers, key
        self._topic, self._offset, self._timestamp_ms = topic, offset, timestamp_ms

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def key(self) -> bytes:
        return self._key

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp_ms)
