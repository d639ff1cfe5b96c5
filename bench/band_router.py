"""The band-router's throughput against a bare confluent-kafka copy loop, same broker, same messages.

    .venv/bin/python bench/band_router.py [--messages 100000] [--batch 500] [--profile]

Pre-produces N Avro predictions (moderation and intent tasks, one to three labels, several model
versions) to a fresh topic, then reads it twice with fresh consumer groups:

- bare: confluent-kafka consume a batch → produce each message unchanged → flush → commit, with the
  runtime's own client settings;
- band-router: the real worker (`workers.band_router.worker:band_router`) on the runtime's Runner,
  in this process, with the repository's example policy `deploy/policies/bands.toml`.

Each rate is measured from the first message in hand to the last output acknowledged; the
band-router's expected output count (decisions, grey-zone and audit tasks) comes from the routing
function itself. Prints both rates and their ratio. `--profile` runs the band-router under cProfile
and prints where its time goes. Needs HITL_KAFKA_BOOTSTRAP (`deploy/local/stack env` prints it).
The bench topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import math
import os
import pstats
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workers.band_router.policy import Policy, load_policy  # noqa: E402
from workers.band_router.routing import route  # noqa: E402
from workers.band_router.worker import band_router  # noqa: E402
from workers.config import Settings, load_settings  # noqa: E402
from workers.contracts import AVRO_CONTENT_TYPE, Event, EventCodec, Item, ModelInfo, Prediction, encode  # noqa: E402
from workers.contracts.avro import HEADER_SIZE, read_body, to_avro_datum  # noqa: E402
from workers.runtime.kafka_config import consumer_config, producer_config  # noqa: E402
from workers.runtime.loop import Runner  # noqa: E402
from workers.runtime.metrics import WorkerMetrics  # noqa: E402
from workers.runtime.topics import dead_letter_topic_config  # noqa: E402
from workers.runtime.worker import HandlerResult, Origin  # noqa: E402

PARTITIONS = 6
POLICY_FILE = REPO / "deploy" / "policies" / "bands.toml"
WORDS = [
    "the",
    "a",
    "you",
    "are",
    "this",
    "is",
    "not",
    "what",
    "we",
    "they",
    "why",
    "how",
    "great",
    "terrible",
    "buy",
    "now",
    "click",
    "free",
    "offer",
]


def score(rng: random.Random) -> float:
    """Mostly confident, sometimes not: 70% near 0, 15% near 1, 15% anywhere."""
    draw = rng.random()
    if draw < 0.70:
        return rng.betavariate(1, 25)
    if draw < 0.85:
        return rng.betavariate(25, 1)
    return rng.random()


def realistic_prediction(rng: random.Random, start: datetime, index: int) -> Prediction:
    if rng.random() < 0.9:
        task, labels = "moderation", ["toxic", "spam", "self_harm"][: rng.choice((1, 2, 3))]
        model = rng.choices(
            [("toxicity-bert", "2.3.1"), ("toxicity-bert", "3.0.0"), ("distil-tox", "1.4.0")], [7, 2, 1]
        )[0]
    else:
        task, labels, model = "intent", ["cancel_subscription", "billing", "other"], ("intent-xlmr", "5")
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
    return Prediction(
        event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        occurred_at=start + timedelta(milliseconds=index),
        source="comment-service",
        task=task,
        model=ModelInfo(name=model[0], version=model[1]),
        item=Item(id=f"comment-{index}", content_type="text/plain", text=text, metadata={"lang": "en"}),
        scores={label: score(rng) for label in labels},
        trace_id=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
    )


def generate(count: int, policy: Policy) -> tuple[list[bytes], dict[str, int]]:
    """The encoded predictions, and how many outputs of each kind the band-router must produce."""
    rng = random.Random(42)
    start = datetime.now(UTC)
    values: list[bytes] = []
    outputs: dict[str, int] = {}
    for index in range(count):
        prediction = realistic_prediction(rng, start, index)
        values.append(encode(prediction))
        for output in route(prediction, policy, start):
            kind = getattr(output, "reason", None) or getattr(output, "outcome", "")
            outputs[str(kind)] = outputs.get(str(kind), 0) + 1
    return values, outputs


def create_topics(admin: AdminClient, names: Iterable[str], dead_letters: str) -> None:
    topics = [NewTopic(n, num_partitions=PARTITIONS, replication_factor=1) for n in names]
    topics.append(
        NewTopic(dead_letters, num_partitions=1, replication_factor=1, config=dead_letter_topic_config())
    )
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)


def fill(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000})
    for index, value in enumerate(values):
        while True:
            try:
                producer.produce(
                    topic, key=str(index).encode(), value=value, headers=[("content-type", b"avro/binary")]
                )
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise RuntimeError("the input topic could not be filled")


@dataclass(frozen=True)
class Clocks:
    """Wall time, the main thread's CPU time and the whole process's (librdkafka's threads too)."""

    wall: float
    main_thread: float
    process: float

    @classmethod
    def now(cls) -> Clocks:
        main = threading.main_thread().ident or 0
        thread_cpu = time.clock_gettime(time.pthread_getcpuclockid(main))
        return cls(time.perf_counter(), thread_cpu, time.process_time())


@dataclass(frozen=True)
class Run:
    messages: int
    start: Clocks
    end: Clocks

    @property
    def rate(self) -> float:
        return self.messages / (self.end.wall - self.start.wall)

    def describe(self) -> str:
        wall = self.end.wall - self.start.wall
        main = (self.end.main_thread - self.start.main_thread) / wall
        process = (self.end.process - self.start.process) / wall
        return f"{self.rate:10,.0f} msg/s   (CPU: main thread {main:4.0%}, process {process:4.0%})"


def bare_loop(settings: Settings, source: str, target: str, count: int, batch: int) -> Run:
    """The baseline: consume a batch, produce each message as is, flush, commit."""
    consumer = Consumer(consumer_config(settings, f"bench-bare-{uuid.uuid4().hex}"))
    producer = Producer(producer_config(settings))
    consumer.subscribe([source])
    copied = 0
    start: Clocks | None = None
    try:
        while copied < count:
            messages = consumer.consume(num_messages=batch, timeout=0.5)
            if not messages:
                continue
            start = start or Clocks.now()
            last: dict[int, int] = {}
            for message in messages:
                if message.error():
                    continue
                _copy(producer, target, message)
                last[message.partition() or 0] = message.offset() or 0
                copied += 1
            if producer.flush(60):
                raise RuntimeError("outputs not acknowledged")
            offsets = [TopicPartition(source, p, o + 1) for p, o in last.items()]
            consumer.commit(offsets=offsets, asynchronous=False)
        assert start is not None
        return Run(count, start, Clocks.now())
    finally:
        consumer.close()


def _copy(producer: Producer, target: str, message: Message) -> None:
    while True:
        try:
            producer.produce(target, key=message.key(), value=message.value(), headers=message.headers())
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.05)


def band_router_loop(settings: Settings, count: int, expected_outputs: int, profile: bool) -> Run:
    """From the first prediction handled to the last output acknowledged.

    The worker runs in this thread (so that cProfile sees it); a watcher thread stops it when the
    runtime's metrics count every expected output as acknowledged.
    """
    spec = band_router(settings)
    first_event: list[Clocks] = []

    handler = spec.handler
    assert handler is not None

    def timed(event: Event, origin: Origin) -> HandlerResult:
        if not first_event:
            first_event.append(Clocks.now())
        return handler(event, origin)

    runner = Runner(dataclasses.replace(spec, handler=timed), settings)
    outputs = [settings.topics.decisions, settings.topics.review_tasks]
    finished: list[Clocks] = []

    def watch() -> None:
        while True:
            produced = sum(
                runner.metrics.registry.get_sample_value(
                    "hitl_events_produced_total", {"worker": spec.name, "topic": topic}
                )
                or 0
                for topic in outputs
            )
            if produced >= expected_outputs:
                finished.append(Clocks.now())
                runner.stop()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    runner.run()
    if profiler:
        profiler.disable()
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(25)
        print(report.getvalue())
    watcher.join(5)
    return Run(count, first_event[0], finished[0])


def stages(values: list[bytes], policy: Policy, repeats: int = 5) -> None:
    """CPU per prediction of each step the runtime and the worker take, without the broker (best of N)."""
    codec = EventCodec()
    headers = [("content-type", AVRO_CONTENT_TYPE.encode())]
    now = datetime.now(UTC)
    writer = codec.registry.current(Prediction)
    predictions = [codec.decode(v, headers, Prediction) for v in values]
    bodies = [v[HEADER_SIZE:] for v in values]
    datums = [read_body(b, writer, writer) for b in bodies]
    outputs = [o for p in predictions for o in route(p, policy, now)]
    metrics = WorkerMetrics("bench")

    def runtime_metrics() -> None:
        for _ in values:  # the calls `Runner` makes for one message and its output
            metrics.consumed.labels("bench", "in").inc()
            metrics.handler_seconds.labels("bench").observe(0.0001)
            metrics.produced.labels("bench", "out").inc()
            metrics.event_age_seconds.labels("bench").observe(1.0)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("decode: codec.decode", lambda: [codec.decode(v, headers, Prediction) for v in values]),
        ("  of which Avro body → dict (fastavro)", lambda: [read_body(b, writer, writer) for b in bodies]),
        ("  of which dict → Prediction (pydantic)", lambda: [Prediction.model_validate(d) for d in datums]),
        ("route: policy lookup, Decision/ReviewTask", lambda: [route(p, policy, now) for p in predictions]),
        (f"encode: {len(outputs) / len(values):.2f} outputs", lambda: [codec.encode(o) for o in outputs]),
        ("  of which model → dict (to_avro_datum)", lambda: [to_avro_datum(o) for o in outputs]),
        ("runtime metrics (4 labelled calls)", runtime_metrics),
    ]
    print("CPU per prediction, without the broker:")
    for name, step in steps:
        best = math.inf
        for _ in range(repeats):
            started = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - started)
        print(f"  {name:45} {best / len(values) * 1e6:6.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="messages per consumed batch, for both loops")
    parser.add_argument("--profile", action="store_true", help="run the band-router under cProfile")
    parser.add_argument("--stages", action="store_true", help="also print the CPU cost of each step")
    args = parser.parse_args()

    bootstrap = os.environ.get("HITL_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    run = uuid.uuid4().hex[:8]
    source = f"bench-{run}-predictions"
    names = {
        "bare": f"bench-{run}-bare-out",
        "decisions": f"bench-{run}-decisions",
        "review": f"bench-{run}-review",
    }
    settings = load_settings(
        kafka_bootstrap=bootstrap,
        group_id_prefix=f"bench-{run}",
        runtime={"batch_size": args.batch},
        topics={"predictions": source, "decisions": names["decisions"], "review_tasks": names["review"]},
        band_router={"policy_file": POLICY_FILE},
    )
    dead_letters = settings.topics.dead_letter_topic(source)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topics(admin, [source, *names.values()], dead_letters)
    try:
        policy = load_policy(POLICY_FILE)
        values, outputs = generate(args.messages, policy)
        fill(bootstrap, source, values)
        expected = sum(outputs.values())
        mean_size = sum(map(len, values)) / len(values)
        print(f"{args.messages:,} predictions, {mean_size:.0f} bytes on average, {PARTITIONS} partitions")
        print(f"policy {policy.version}; batches of {args.batch}")
        print("band-router outputs: " + ", ".join(f"{kind} {n:,}" for kind, n in sorted(outputs.items())))

        bare = bare_loop(settings, source, names["bare"], args.messages, args.batch)
        print(f"bare confluent-kafka consume→produce: {bare.describe()}")
        router = band_router_loop(settings, args.messages, expected, args.profile)
        print(f"band-router:                          {router.describe()}")
        print(f"ratio band-router / bare:             {router.rate / bare.rate:10.2f}")
        if args.stages:
            stages(values[:20_000], policy)
    finally:
        for future in admin.delete_topics([source, dead_letters, *names.values()]).values():
            future.result(timeout=30)


if __name__ == "__main__":
    main()
