"""The peer benchmark: the band-router as users run it, against a bare copy loop and Quix Streams.

    eval "$(deploy/local/stack env)"
    python3 -m venv .venv-bench && .venv-bench/bin/pip install -e '.[bench]'   # once, for Quix Streams
    .venv/bin/python bench/peer.py [--messages 100000] [--rounds 3] [--rate 5000] [--scaling 10000,100000]

Quix Streams runs from a virtual environment of its own (`--quix-python`, by default
`.venv-bench/bin/python`): it pins confluent-kafka below 2.13, whose type information the
project's `mypy` needs, so installing the `bench` extra into `.venv` would break the type check.

Every variant is a process of its own, with a consumer group of its own, on the same broker and
the same input: realistic JSON predictions (`bench/band_router.py`'s generator) on 6 partitions.

- bare: confluent-kafka consume a batch → produce each message unchanged → flush → commit, with the
  runtime's own client settings (`kafka_config`);
- band-router: `hitl-workers run band-router`, the command users run, on the repository's example
  policy, full validation, Avro out;
- quix: `bench/quix_router.py`, the same bands as a Quix Streams app with JSON serializers.

Rounds are interleaved (each round runs every variant, in a rotated order). Measured per run:
- throughput: input messages ÷ the span of the outputs' broker append times (LogAppendTime
  topics), so process start-up and group joins are left out;
- CPU µs per message of the variant's process (user + system, librdkafka's threads included),
  from its first output to its last;
- RSS of the process at the end of the run (steady state), and its peak;
- latency at `--rate` events/s: from the send time (taken when the driver produces the input) to
  the append time of its first output, p50 and p99; and the variant's own share of it, from the
  input's append time (its topic is LogAppendTime too) to the same output's, which leaves out the
  driver's producer and the broker's append of the input.
Then the band-router alone on `--scaling` sizes, to show its cost grows linearly. Prints a table.
Every bench topic is deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workers.band_router.policy import Policy, load_policy  # noqa: E402
from workers.band_router.routing import route  # noqa: E402
from workers.config import Settings, load_settings  # noqa: E402
from workers.contracts import to_json  # noqa: E402
from workers.runtime.kafka_config import consumer_config, producer_config  # noqa: E402
from workers.runtime.topics import dead_letter_topic_config  # noqa: E402

PARTITIONS = 6
POLICY_FILE = REPO / "deploy" / "policies" / "bands.toml"
APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
JSON_HEADERS = [("content-type", b"application/json")]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
VARIANTS = ("bare", "band-router", "quix")
# The latency driver sleeps at least this long at a time and sends what has fallen due meanwhile
# (each event still stamped when it is sent): a sleep per event, every 0.2 ms at 5,000 ev/s, cost it
# a third of a core of the two it shares with the broker and the variant measured.
PACING_STEP_SECONDS = 0.001


def _load_generator() -> ModuleType:
    """`bench/band_router.py`, whose realistic predictions this benchmark reuses."""
    spec = importlib.util.spec_from_file_location(
        "bench_band_router", Path(__file__).with_name("band_router.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- input -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """JSON predictions keyed by event id, and how many outputs the routing makes of them."""

    keys: list[bytes]
    values: list[bytes]
    routed_outputs: list[int]

    def take(self, count: int) -> Inputs:
        """The first `count`, repeating the list when it is shorter (routing does not deduplicate)."""
        n = len(self.values)
        picks = [i % n for i in range(count)]
        return Inputs(
            [self.keys[i] for i in picks],
            [self.values[i] for i in picks],
            [self.routed_outputs[i] for i in picks],
        )

    def expected(self, variant: str) -> int:
        return len(self.values) if variant == "bare" else sum(self.routed_outputs)


def generate(count: int, policy: Policy) -> Inputs:
    import random

    generator = _load_generator()
    rng = random.Random(42)
    start = datetime.now(UTC)
    keys, values, outputs = [], [], []
    for index in range(count):
        prediction = generator.realistic_prediction(rng, start, index)
        keys.append(str(prediction.event_id).encode())
        values.append(to_json(prediction))
        outputs.append(len(route(prediction, policy, start)))
    return Inputs(keys, values, outputs)


# -- topics ----------------------------------------------------------------------------------------


class Topics:
    def __init__(self, bootstrap: str, run: str) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.run = run
        self.created: list[str] = []
        self._count = 0

    def create(self, label: str, *, append_time: bool = False, dead_letters: bool = False) -> str:
        self._count += 1
        name = f"bench-{self.run}-{self._count}-{label}"
        topics = [NewTopic(name, PARTITIONS, 1, config=APPEND_TIME if append_time else {})]
        if dead_letters:
            topics.append(NewTopic(name + ".dlq", 1, 1, config=dead_letter_topic_config()))
        for future in self.admin.create_topics(topics).values():
            future.result(timeout=30)
        self.created += [t.topic for t in topics]
        return name

    def delete_all(self) -> None:
        if self.created:
            for future in self.admin.delete_topics(self.created).values():
                with contextlib.suppress(KafkaException):
                    future.result(timeout=30)


def fill(bootstrap: str, topic: str, inputs: Inputs) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000})
    for key, value in zip(inputs.keys, inputs.values, strict=True):
        _produce(producer, topic, key, value)
    if producer.flush(300):
        raise RuntimeError("the input topic could not be filled")


def _produce(producer: Producer, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, headers=JSON_HEADERS)
            return
        except BufferError:
            producer.poll(0.05)


# -- the variants' processes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    outputs: tuple[str, ...]
    command: list[str]
    env: dict[str, str]


QUIX_PYTHON = REPO / ".venv-bench" / "bin" / "python"


def variant(name: str, settings: Settings, topics: Topics, source: str, group: str) -> Variant:
    python = sys.executable
    env = dict(os.environ)
    if name == "bare":
        out = topics.create("bare-out", append_time=True)
        command = [python, __file__, "--child-bare", source, out, group]
        return Variant(name, (out,), command, env)
    decisions = topics.create("decisions", append_time=True)
    review = topics.create("review", append_time=True)
    if name == "quix":
        command = [
            os.environ.get("HITL_BENCH_QUIX_PYTHON", str(QUIX_PYTHON)),
            str(Path(__file__).with_name("quix_router.py")),
        ]
        command += ["--input", source, "--decisions", decisions, "--review", review, "--group", group]
        return Variant(name, (decisions, review), command, env)
    env.update(
        {
            "HITL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "HITL_GROUP_ID_PREFIX": group,
            "HITL_TOPICS__PREDICTIONS": source,
            "HITL_TOPICS__DECISIONS": decisions,
            "HITL_TOPICS__REVIEW_TASKS": review,
            "HITL_BAND_ROUTER__POLICY_FILE": str(POLICY_FILE),
            "HITL_METRICS_PORT": "0",
        }
    )
    command = [str(Path(python).with_name("hitl-workers")), "run", "band-router", "--log-level", "WARNING"]
    return Variant(name, (decisions, review), command, env)


def child_bare(source: str, target: str, group: str) -> None:
    """The bare loop as a process: until SIGTERM, consume a batch, copy it, flush, commit."""
    settings = load_settings()
    consumer = Consumer(consumer_config(settings, group))
    producer = Producer(producer_config(settings))
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    consumer.subscribe([source])
    while not stopping:
        messages = consumer.consume(num_messages=500, timeout=0.1)
        last: dict[int, int] = {}
        for message in messages:
            if message.error():
                continue
            while True:
                try:
                    producer.produce(
                        target, key=message.key(), value=message.value(), headers=message.headers()
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            last[message.partition() or 0] = message.offset() or 0
        if last:
            if producer.flush(60):
                raise RuntimeError("outputs not acknowledged")
            consumer.commit(
                offsets=[TopicPartition(source, p, o + 1) for p, o in last.items()], asynchronous=False
            )
    consumer.close()


class Process:
    """A variant's process, with its CPU time (sampled every 20 ms, with the wall clock) and resident
    memory read from /proc."""

    def __init__(self, spec: Variant) -> None:
        self.process = subprocess.Popen(spec.command, env=spec.env, cwd=REPO)
        self.peak_rss = 0.0
        self.cpu_samples: list[tuple[float, float]] = []
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while self.alive():
            try:
                self.cpu_samples.append((time.time(), self.cpu_seconds()))
            except (OSError, IndexError, ValueError):
                return
            time.sleep(0.02)

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds the process used between two wall-clock times (the nearest samples)."""
        at_start = min(self.cpu_samples, key=lambda sample: abs(sample[0] - start))
        at_end = min(self.cpu_samples, key=lambda sample: abs(sample[0] - end))
        return at_end[1] - at_start[1]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
                self.peak_rss = max(self.peak_rss, rss)
                return rss
        return 0.0

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


# -- reading the outputs ---------------------------------------------------------------------------


class Outputs:
    """Counts and append times of output topics, read by the driver."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )

    def count(self, topics: Sequence[str]) -> int:
        return sum(self._high(topic, partition) for topic in topics for partition in range(PARTITIONS))

    def _high(self, topic: str, partition: int) -> int:
        for attempt in range(50):
            try:
                return int(
                    self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
                )
            except KafkaException:
                # A topic just created may have no leader for a moment.
                if attempt == 49:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def span_ms(self, topics: Sequence[str]) -> tuple[int, int]:
        """The first and the last append time over every partition of `topics`."""
        first, last = [], []
        for topic in topics:
            for partition in range(PARTITIONS):
                high = self._high(topic, partition)
                if high == 0:
                    continue
                first.append(self._timestamp_at(topic, partition, 0))
                last.append(self._timestamp_at(topic, partition, high - 1))
        return min(first), max(last)

    def _timestamp_at(self, topic: str, partition: int, offset: int) -> int:
        self.consumer.assign([TopicPartition(topic, partition, offset)])
        while True:
            message = self.consumer.poll(10)
            if message is None:
                raise RuntimeError(f"nothing at {topic}[{partition}]@{offset}")
            if message.error() is None:
                return message.timestamp()[1]

    def append_times(self, topics: Sequence[str]) -> dict[bytes, int]:
        """The earliest output append time of every key."""
        times: dict[bytes, int] = {}
        expected = self.count(topics)
        self.consumer.assign([TopicPartition(t, p, 0) for t in topics for p in range(PARTITIONS)])
        seen = 0
        while seen < expected:
            for message in self.consumer.consume(1000, timeout=2):
                if message.error() is not None:
                    continue
                seen += 1
                key, appended = message.key() or b"", message.timestamp()[1]
                times[key] = min(times.get(key, appended), appended)
        self.consumer.unassign()
        return times

    def close(self) -> None:
        self.consumer.close()


# -- runs ------------------------------------------------------------------------------------------


@dataclass
class Throughput:
    messages: int
    rate: float
    cpu_us: float
    rss_mb: float
    peak_rss_mb: float
    exit_code: int


def wait_for(condition: Callable[[], bool], process: Process, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if not process.alive():
            raise RuntimeError(f"{what}: the process exited with {process.process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not done within {timeout:.0f} s")
        process.rss_mb()
        time.sleep(0.05)


def throughput_run(name: str, ctx: Context, source: str, inputs: Inputs) -> Throughput:
    spec = variant(name, ctx.settings, ctx.topics, source, f"bench-{ctx.topics.run}-{uuid.uuid4().hex[:6]}")
    expected = inputs.expected(name)
    process = Process(spec)
    try:
        wait_for(lambda: ctx.outputs.count(spec.outputs) >= expected, process, 1800, f"{name} run")
        rss = process.rss_mb()
    finally:
        exit_code = process.stop()
    first, last = ctx.outputs.span_ms(spec.outputs)
    messages = len(inputs.values)
    rate = messages / max((last - first) / 1000, 0.001)
    # CPU from the first output's append time to the last's (start-up is left out); the broker
    # runs on this host, so its clock is ours.
    cpu = process.cpu_between(first / 1000, last / 1000)
    return Throughput(messages, rate, cpu / messages * 1e6, rss, process.peak_rss, exit_code)


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float
    sent: int
    own_p50_ms: float = float("nan")
    """From the input's append time to its first output's: the variant's own share."""
    own_p99_ms: float = float("nan")


def latency_run(name: str, ctx: Context, inputs: Inputs, rate: int, seconds: float) -> Latency:
    source = ctx.topics.create("latency-in", append_time=True, dead_letters=True)
    spec = variant(name, ctx.settings, ctx.topics, source, f"bench-{ctx.topics.run}-{uuid.uuid4().hex[:6]}")
    producer = Producer({"bootstrap.servers": ctx.settings.kafka_bootstrap, "linger.ms": 1})
    process = Process(spec)
    sent: dict[bytes, int] = {}
    try:
        # Warm up until the process has its partitions and routes: one event every 100 ms.
        warm = 0
        while ctx.outputs.count(spec.outputs) == 0:
            if not process.alive() or warm > 1200:
                raise RuntimeError(f"{name} latency: no output after {warm} warm-up events")
            _produce(producer, source, inputs.keys[warm], inputs.values[warm])
            producer.flush(5)
            warm += 1
            time.sleep(0.1)
        baseline = ctx.outputs.count(spec.outputs)
        total = int(rate * seconds)
        # Outputs are keyed by event id: the measured events are the inputs' last, the warm-up's
        # their first, so that no two share a key.
        if total + warm >= len(inputs.values):
            raise RuntimeError(f"{total:,} latency events need more than {len(inputs.values):,} inputs")
        measured = Inputs(inputs.keys[-total:], inputs.values[-total:], inputs.routed_outputs[-total:])
        started = time.monotonic()
        for index in range(total):
            due = started + index / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(max(pause, PACING_STEP_SECONDS))
            now_ms = int(time.time() * 1000)
            key = measured.keys[index]
            _produce(producer, source, key, measured.values[index])
            sent[key] = now_ms
            producer.poll(0)
        producer.flush(30)
        expected = baseline + (total if name == "bare" else sum(measured.routed_outputs))
        wait_for(lambda: ctx.outputs.count(spec.outputs) >= expected, process, 120, f"{name} latency")
    finally:
        process.stop()
    appended = ctx.outputs.append_times(spec.outputs)
    received = ctx.outputs.append_times([source])
    latencies = sorted(appended[key] - at for key, at in sent.items() if key in appended)
    own = sorted(appended[key] - received[key] for key in sent if key in appended and key in received)
    return Latency(
        _percentile(latencies, 50),
        _percentile(latencies, 99),
        len(sent),
        _percentile(own, 50),
        _percentile(own, 99),
    )


def _percentile(values: Sequence[int], percent: float) -> float:
    if not values:
        return float("nan")
    return float(values[min(len(values) - 1, int(len(values) * percent / 100))])


@dataclass
class Context:
    settings: Settings
    topics: Topics
    outputs: Outputs


# -- report ----------------------------------------------------------------------------------------


@dataclass
class Results:
    throughput: dict[str, list[Throughput]] = field(default_factory=dict)
    latency: dict[str, list[Latency]] = field(default_factory=dict)
    scaling: list[Throughput] = field(default_factory=list)


def table(results: Results, messages: int, rate: int) -> str:
    bare = (
        statistics.median(r.rate for r in results.throughput.get("bare", []))
        if "bare" in results.throughput
        else None
    )
    rounds = max((len(runs) for runs in results.throughput.values()), default=0)
    lines = [
        f"| variant | msg/s (median of {rounds}) | ÷ bare loop "
        f"| CPU µs/msg | p50 / p99 at {rate:,} ev/s | of which its own | RSS end / peak |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        runs = results.throughput.get(name, [])
        lat = results.latency.get(name, [])
        if not runs and not lat:
            continue
        p50 = statistics.median(x.p50_ms for x in lat) if lat else 0.0
        p99 = statistics.median(x.p99_ms for x in lat) if lat else 0.0
        latency = f"{p50:.0f} / {p99:.0f} ms" if lat else "-"
        own_p50 = statistics.median(x.own_p50_ms for x in lat) if lat else 0.0
        own_p99 = statistics.median(x.own_p99_ms for x in lat) if lat else 0.0
        latency += f" | {own_p50:.0f} / {own_p99:.0f} ms" if lat else " | -"
        if not runs:
            lines.append(f"| {name} | - | - | - | {latency} | - |")
            continue
        median = statistics.median(r.rate for r in runs)
        ratio = f"{median / bare:.2f}" if bare else "-"
        cpu = statistics.median(r.cpu_us for r in runs)
        rss = f"{statistics.median(r.rss_mb for r in runs):.0f} / {max(r.peak_rss_mb for r in runs):.0f} MB"
        lines.append(f"| {name} | {median:,.0f} | {ratio} | {cpu:.1f} | {latency} | {rss} |")
    if results.scaling:
        lines += ["", "| band-router, events | msg/s | CPU µs/msg | RSS end MB |", "|---|---|---|---|"]
        lines += [
            f"| {r.messages:,} | {r.rate:,.0f} | {r.cpu_us:.1f} | {r.rss_mb:.0f} |" for r in results.scaling
        ]
    every = "; ".join(
        f"{name}: " + ", ".join(f"{r.rate:,.0f}" for r in runs) for name, runs in results.throughput.items()
    )
    lines += ["", f"{messages:,} JSON predictions, {PARTITIONS} partitions; every round's msg/s: {every}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=5000, help="events/s of the latency runs")
    parser.add_argument("--latency-seconds", type=float, default=6.0)
    parser.add_argument(
        "--scaling", default="10000,100000", help="band-router sizes, comma-separated ('' skips)"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput runs")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--quix-python", default=str(QUIX_PYTHON), help="the Python that has quixstreams")
    parser.add_argument(
        "--child-bare", nargs=3, metavar=("SOURCE", "TARGET", "GROUP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child_bare:
        child_bare(*args.child_bare)
        return

    os.environ["HITL_BENCH_QUIX_PYTHON"] = args.quix_python
    settings = load_settings()
    run = uuid.uuid4().hex[:8]
    ctx = Context(settings, Topics(settings.kafka_bootstrap, run), Outputs(settings.kafka_bootstrap))
    names = [n for n in args.variants.split(",") if n]
    sizes = [int(s) for s in args.scaling.split(",") if s]
    results = Results()
    try:
        policy = load_policy(POLICY_FILE)
        started = time.monotonic()
        inputs = generate(args.messages, policy)
        print(f"generated {args.messages:,} predictions in {time.monotonic() - started:.0f} s", flush=True)
        source = ctx.topics.create("predictions", dead_letters=True)
        fill(settings.kafka_bootstrap, source, inputs)
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in [] if args.latency_only else order:
                result = throughput_run(name, ctx, source, inputs)
                results.throughput.setdefault(name, []).append(result)
                print(
                    f"round {round_ + 1} {name:12} {result.rate:9,.0f} msg/s {result.cpu_us:6.1f} µs/msg "
                    f"RSS {result.rss_mb:4.0f} MB (exit {result.exit_code})",
                    flush=True,
                )
            for name in order:
                latency = latency_run(name, ctx, inputs, args.rate, args.latency_seconds)
                results.latency.setdefault(name, []).append(latency)
                p50, p99 = latency.p50_ms, latency.p99_ms
                own = f"own p50 {latency.own_p50_ms:5.0f} ms  p99 {latency.own_p99_ms:5.0f} ms"
                print(f"round {round_ + 1} {name:12} p50 {p50:5.0f} ms  p99 {p99:5.0f} ms  {own}", flush=True)
        for size in sizes:
            scaled = inputs.take(size)
            sized_source = ctx.topics.create(f"predictions-{size}", dead_letters=True)
            fill(settings.kafka_bootstrap, sized_source, scaled)
            result = throughput_run("band-router", ctx, sized_source, scaled)
            results.scaling.append(result)
            print(f"scaling {size:>9,} {result.rate:9,.0f} msg/s {result.cpu_us:6.1f} µs/msg", flush=True)
        print()
        print(table(results, args.messages, args.rate))
        if args.json:
            Path(args.json).write_text(json.dumps(results, default=lambda o: o.__dict__, indent=1))
    finally:
        ctx.outputs.close()
        ctx.topics.delete_all()


if __name__ == "__main__":
    main()
