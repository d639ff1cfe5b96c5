"""Dead letters an operator can act on: `hitl-workers dlq list` and `hitl-workers dlq replay`.

`list` counts each dead-letter topic's letters by reason and shows the last few with their headers.
`replay` produces dead letters again to the topic they came from (`hitl.dlq.source.topic`), with
their original key, value and headers (the `hitl.dlq.*` ones removed), after the cause is fixed.

Replay is idempotent: every replayed message carries `hitl.replay.of` = `<dlq topic>:<partition>:
<offset>` of its dead letter. Before producing, replay reads the source topics from the time of the
oldest selected dead letter on (a replay can only come after it) and skips every letter whose marker
is already there. A replayed message that fails again becomes a new dead letter at a new offset,
which a later replay may replay again. Letters whose value was cut to fit the dead-letter topic
(`hitl.dlq.value.truncated`) cannot be replayed and are counted apart.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import (
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from workers.config import Settings
from workers.contracts import Headers
from workers.errors import ConfigError, DependencyUnavailable
from workers.runtime.dead_letters import HEADER_PREFIX, read_dead_letter_headers
from workers.runtime.kafka_config import consumer_config, producer_config
from workers.runtime.messages import headers_of

REPLAY_MARKER = "hitl.replay.of"
_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def failure(self) -> dict[str, str]:
        return read_dead_letter_headers(self.headers)

    @property
    def reason(self) -> str:
        return self.failure.get("reason", "(none)")

    @property
    def marker(self) -> bytes:
        return f"{self.topic}:{self.partition}:{self.offset}".encode()

    @property
    def failed_at(self) -> datetime | None:
        text = self.failure.get("failed_at")
        try:
            return datetime.fromisoformat(text) if text else self.timestamp
        except ValueError:
            return self.timestamp

    @property
    def replayable(self) -> bool:
        failure = self.failure
        return (
            self.value is not None
            and "source.topic" in failure
            and failure.get("value.truncated") != "true"
            and failure.get("headers.dropped") != "true"
        )

    def replay_headers(self) -> Headers:
        kept = [
            (name, value)
            for name, value in self.headers
            if not name.startswith(HEADER_PREFIX) and name != REPLAY_MARKER
        ]
        return [*kept, (REPLAY_MARKER, self.marker)]


@dataclass
class Listing:
    topic: str
    missing: bool = False
    reasons: Counter[str] = field(default_factory=Counter)
    last: list[DeadLetter] = field(default_factory=list)


@dataclass
class ReplayCount:
    selected: int = 0
    replayed: int = 0
    already_replayed: int = 0
    not_replayable: int = 0
    by_target: Counter[str] = field(default_factory=Counter)


def dead_letter_topics(settings: Settings) -> list[str]:
    """The dead-letter topics of the settings' input topics."""
    return [settings.topics.dead_letter_topic(topic) for topic in settings.topics.inputs()]


def list_dead_letters(settings: Settings, topics: Sequence[str], last: int = 5) -> list[Listing]:
    listings = []
    with _reader(settings) as consumer:
        for topic in topics:
            listing = Listing(topic)
            listings.append(listing)
            if not _exists(consumer, topic):
                listing.missing = True
                continue
            for letter in read_all(consumer, topic):
                listing.reasons[letter.reason] += 1
                listing.last = [*listing.last, letter][-last:] if last else []
    return listings


def _exists(consumer: Consumer, topic: str) -> bool:
    metadata = consumer.list_topics(topic, timeout=_TIMEOUT_SECONDS).topics.get(topic)
    return metadata is not None and metadata.error is None


def replay(
    settings: Settings,
    topic: str,
    *,
    reason: str | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
) -> ReplayCount:
    count = ReplayCount()
    with _reader(settings) as consumer:
        selected = [
            letter
            for letter in read_all(consumer, topic)
            if (reason is None or letter.reason == reason)
            and (since is None or (letter.failed_at is not None and letter.failed_at >= since))
        ]
        count.selected = len(selected)
        replayable = [letter for letter in selected if letter.replayable]
        count.not_replayable = len(selected) - len(replayable)
        done = _markers_in_sources(consumer, replayable)
    pending = [letter for letter in replayable if letter.marker not in done]
    count.already_replayed = len(replayable) - len(pending)
    for letter in pending:
        count.by_target[letter.failure["source.topic"]] += 1
    if not dry_run and pending:
        _produce(settings, pending)
    count.replayed = len(pending)
    return count


def read_all(consumer: Consumer, topic: str, since_ms: int | None = None) -> Iterator[DeadLetter]:
    """Every message of the topic, up to its end when called (from `since_ms` on, if given)."""
    metadata = consumer.list_topics(topic, timeout=_TIMEOUT_SECONDS).topics.get(topic)
    if metadata is None or metadata.error is not None:
        raise ConfigError(f"topic {topic!r} does not exist")
    for partition in sorted(metadata.partitions):
        low, high = _watermarks(consumer, topic, partition)
        start = low
        if since_ms is not None:
            found = consumer.offsets_for_times(
                [TopicPartition(topic, partition, since_ms)], timeout=_TIMEOUT_SECONDS
            )[0].offset
            start = high if found in (OFFSET_END, -1) else max(found, low)
        if start >= high:
            continue
        consumer.assign([TopicPartition(topic, partition, start)])
        yield from _read_partition(consumer, high)
        consumer.unassign()


def _read_partition(consumer: Consumer, high: int) -> Iterator[DeadLetter]:
    while True:
        message = consumer.poll(_TIMEOUT_SECONDS)
        if message is None:
            raise DependencyUnavailable("Kafka did not answer while reading the topic")
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            raise DependencyUnavailable(f"reading the topic failed: {error.str()}")
        letter = _letter(message)
        yield letter
        if letter.offset + 1 >= high:
            return


def _letter(message: Message) -> DeadLetter:
    _kind, millis = message.timestamp()
    return DeadLetter(
        topic=str(message.topic()),
        partition=int(message.partition() or 0),
        offset=int(message.offset() or 0),
        timestamp=datetime.fromtimestamp(millis / 1000, UTC) if millis > 0 else None,
        key=message.key(),
        value=message.value(),
        headers=headers_of(message),
    )


def _markers_in_sources(consumer: Consumer, letters: Sequence[DeadLetter]) -> set[bytes]:
    """The replay markers already on the letters' source topics, from the oldest letter's time on."""
    if not letters:
        return set()
    stamps = [letter.timestamp for letter in letters if letter.timestamp is not None]
    since_ms = int(min(stamps).timestamp() * 1000) if stamps else None
    markers: set[bytes] = set()
    for source in sorted({letter.failure["source.topic"] for letter in letters}):
        for message in read_all(consumer, source, since_ms):
            markers.update(value for name, value in message.headers if name == REPLAY_MARKER and value)
    return markers


def _produce(settings: Settings, letters: Sequence[DeadLetter]) -> None:
    producer = Producer(producer_config(settings))
    errors: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    for letter in letters:
        while True:
            try:
                producer.produce(
                    letter.failure["source.topic"],
                    key=letter.key,
                    value=letter.value,
                    headers=list(letter.replay_headers()),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.1)
            except KafkaException as error:
                raise DependencyUnavailable(f"replay refused by Kafka: {error}") from error
    if producer.flush(_TIMEOUT_SECONDS) or errors:
        first = errors[0].str() if errors else "not acknowledged in time"
        raise DependencyUnavailable(f"replay not fully acknowledged ({first}); running it again is safe")


def _watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=_TIMEOUT_SECONDS)
    except KafkaException as error:
        raise DependencyUnavailable(f"cannot read the offsets of {topic}: {error}") from error
    return int(low), int(high)


@contextmanager
def _reader(settings: Settings) -> Iterator[Consumer]:
    """A consumer that reads by assignment, never commits, and is closed afterwards."""
    group = f"{settings.group_id_prefix}.dlq-tool.{uuid.uuid4().hex[:8]}"
    consumer = Consumer(consumer_config(settings, group, **{"enable.partition.eof": True}))
    try:
        yield consumer
    finally:
        consumer.close()


def format_listing(listing: Listing) -> list[str]:
    if listing.missing:
        return [f"{listing.topic}: no such topic"]
    total = sum(listing.reasons.values())
    lines = [f"{listing.topic}: {total} dead letter{'s' if total != 1 else ''}"]
    lines += [f"  {count:>7}  {reason}" for reason, count in listing.reasons.most_common()]
    if listing.last:
        lines.append(f"  last {len(listing.last)}:")
    for letter in reversed(listing.last):
        when = letter.failed_at.isoformat() if letter.failed_at else "?"
        key = letter.key.decode(errors="replace") if letter.key else "-"
        lines.append(f"    [{letter.partition}]@{letter.offset}  {when}  reason={letter.reason}  key={key}")
        for name, value in letter.headers:
            text = value.decode(errors="replace") if value is not None else ""
            lines.append(f"      {name}: {text[:300]}")
    return lines
