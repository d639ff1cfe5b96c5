"""The runtime's overhead: a pass-through worker against a bare confluent-kafka loop, same broker, same data.

    .venv/bin/python bench/runtime_passthrough.py [--messages 200000] [--batch 500]

Both read the same pre-produced topic of ~1 KB Avro predictions and copy every message to an
output topic, committing offsets per batch after the outputs are flushed. The bare loop copies
bytes; the runtime decodes each value into its Pydantic model, calls the handler, encodes the output,
and keeps its metrics. Prints both rates and their ratio. Needs HITL_KAFKA_BOOTSTRAP (the local
stack's `deploy/local/stack env` prints it).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.config import Settings, load_settings
from workers.contracts import Item, ModelInfo, Prediction, default_codec, encode
from workers.runtime.kafka_config import consumer_config, producer_config
from workers.runtime.loop import Runner
from workers.runtime.worker import Origin, WorkerSpec

PARTITIONS = 6


def one_kilobyte_prediction(index: int) -> Prediction:
    from datetime import UTC, datetime

    return Prediction(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        source="bench",
        task="moderation",
        model=ModelInfo(name="toxicity-bert", version="2.3.1"),
        item=Item(id=f"item-{index}", content_type="text/plain", text="x" * 820, metadata={"lang": "en"}),
        scores={"toxic": 0.61, "ok": 0.39},
    )


def create_topics(admin: AdminClient, names: Iterable[str]) -> None:
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=PARTITIONS, replication_factor=1) for n in names]
    )
    for future in futures.values():
        future.result(timeout=30)


def fill(bootstrap: str, topic: str, count: int) -> int:
    template = [encode(one_kilobyte_prediction(i)) for i in range(1000)]
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000})
    for i in range(count):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=template[i % len(template)])
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    return len(template[0])


def bare_loop(
    settings: Settings, source: str, target: str, count: int, batch: int, *, codec: bool = False
) -> float:
    """The baseline: consume a batch, produce each message, flush, commit.

    With `codec`, each value is also decoded into its model and encoded again, as the runtime does,
    which separates the codec's cost from the runtime's own.
    """
    codec_instance = default_codec()
    consumer = Consumer(consumer_config(settings, f"bench-bare-{uuid.uuid4().hex}"))
    producer = Producer(producer_config(settings))
    consumer.subscribe([source])
    copied = 0
    started: float | None = None
    while copied < count:
        messages = consumer.consume(num_messages=batch, timeout=0.5)
        if not messages:
            continue
        started = started or time.perf_counter()
        last: dict[int, int] = {}
        for message in messages:
            if message.error():
                continue
            value = message.value()
            if codec:
                value = codec_instance.encode(codec_instance.decode(value, message.headers(), Prediction))
            while True:
                try:
                    producer.produce(target, key=message.key(), value=value, headers=message.headers())
                    break
                except BufferError:
                    producer.poll(0.05)
            last[message.partition()] = message.offset()  # type: ignore[index]
            copied += 1
        producer.flush(60)
        consumer.commit(
            offsets=[TopicPartition(source, p, o + 1) for p, o in last.items()], asynchronous=False
        )
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return count / elapsed


def runtime_loop(settings: Settings, source: str, target: str, count: int) -> float:
    def pass_through(event: Prediction, _origin: Origin) -> list[Prediction]:
        return [event]

    spec = WorkerSpec("bench-passthrough", source, (Prediction,), pass_through, {Prediction: target})
    runner = Runner(spec, settings)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    started: float | None = None
    while True:
        consumed = (
            runner.metrics.registry.get_sample_value(
                "hitl_events_consumed_total", {"worker": spec.name, "topic": source}
            )
            or 0
        )
        produced = (
            runner.metrics.registry.get_sample_value(
                "hitl_events_produced_total", {"worker": spec.name, "topic": target}
            )
            or 0
        )
        if consumed and started is None:
            started = time.perf_counter()
        if produced >= count:
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    runner.stop()
    thread.join(30)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    bootstrap = os.environ.get("HITL_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    settings = load_settings(
        kafka_bootstrap=bootstrap,
        group_id_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        runtime={"batch_size": args.batch},
    )
    run = uuid.uuid4().hex[:8]
    source = f"bench-{run}-in"
    bare_out, codec_out, runtime_out = (f"bench-{run}-{name}-out" for name in ("bare", "codec", "runtime"))
    topics = [source, bare_out, codec_out, runtime_out, source + ".dlq"]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topics(admin, topics)
    try:
        size = fill(bootstrap, source, args.messages)
        print(f"{args.messages} messages of {size} bytes, {PARTITIONS} partitions, batches of {args.batch}")
        bare = bare_loop(settings, source, bare_out, args.messages, args.batch)
        print(f"bare confluent-kafka consume→produce:          {bare:10,.0f} msg/s")
        with_codec = bare_loop(settings, source, codec_out, args.messages, args.batch, codec=True)
        print(f"bare loop + decode/encode of every event:     {with_codec:10,.0f} msg/s")
        runtime = runtime_loop(settings, source, runtime_out, args.messages)
        print(f"runtime, pass-through handler:                {runtime:10,.0f} msg/s")
        print(f"ratio runtime / bare:                         {runtime / bare:10.2f}")
        print(f"ratio runtime / bare + codec (runtime's own): {runtime / with_codec:10.2f}")
    finally:
        for future in admin.delete_topics(topics).values():
            future.result(timeout=30)


if __name__ == "__main__":
    main()
