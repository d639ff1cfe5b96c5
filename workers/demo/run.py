"""`hitl-workers demo`: the whole pipeline on the bundled sample, on the running stack.

It works in a namespace of its own, emptied at the start of every run: topics `demo.*`, the
PostgreSQL schema `demo`, and in the review tool the Argilla workspace `hitl-demo` or the Label
Studio projects `hitl-demo-*` (HITL_REVIEW__BACKEND chooses, as for the workers). Steps:

1. start every worker and the gateway as its own process (logs in .stack/demo/logs/);
2. produce the sample predictions, feedback and extractions as JSON, as applications do: part of
   the feedback over HTTP through the gateway, the rest straight onto the topics;
3. wait until the routers have routed everything and the review tasks are items of the review tool;
4. let simulated reviewers answer every item through the tool's API (`desks`);
5. wait until the label-sink has written the resolved labels, and export them for fine-tuning;
6. print what landed where, with the URL of the gateway's demo page (the 👍/👎 widget); in a
   terminal the pipeline keeps running for that page until Ctrl-C, then the workers stop. The
   stack keeps running, so the records, responses and tables stay there to look at.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from workers.config import Settings, load_settings
from workers.demo.desks import PROJECT_PREFIX, WORKSPACE, ReviewDesk, desks_for
from workers.demo.processes import WorkerProcesses
from workers.runtime.kafka_config import admin_config, consumer_config
from workers.runtime.producing import KafkaOutput
from workers.runtime.topics import create_topics, project_topics
from workers.storage.migrations import migrate

REPO_DIR = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO_DIR / "samples"
OUTPUT_DIR = REPO_DIR / ".stack" / "demo"
SCHEMA = "demo"
WORKERS = (
    "band-router",
    "feedback-triage",
    "extraction-validator",
    "argilla-publisher",
    "argilla-collector",
    "label-sink",
    "gateway",
    # What `hitl-workers report` and `calibrate` read afterwards (schema demo).
    "quality-decisions",
    "quality-tasks",
    "quality-reviews",
)
# The share of the sample's feedback that goes through the gateway (the rest straight to Kafka).
FEEDBACK_OVER_HTTP = 0.5
PROGRESS_EVERY_SECONDS = 10
TOPIC_FIELDS = (
    "predictions",
    "feedback",
    "extractions",
    "decisions",
    "extractions_valid",
    "review_tasks",
    "review_resolved",
    "training_examples",
)
STEP_TIMEOUT_SECONDS = 300


def demo_environment(settings: Settings) -> dict[str, str]:
    """The settings the demo's workers run with: the demo's topics, schema and workspace."""
    dsn = settings.postgres_dsn.get_secret_value()
    separator = "&" if "?" in dsn else "?"
    environment = {
        "HITL_POSTGRES_DSN": f"{dsn}{separator}options={quote('-csearch_path=' + SCHEMA)}",
        "HITL_ARGILLA_BRIDGE__WORKSPACE": WORKSPACE,
        "HITL_LABEL_STUDIO__PROJECT_PREFIX": PROJECT_PREFIX,
        "HITL_ARGILLA_BRIDGE__RECONCILE_INTERVAL_SECONDS": "10",
        "HITL_GROUP_ID_PREFIX": "demo",
        "HITL_RUNTIME__BATCH_WAIT_SECONDS": "0.2",
        "HITL_GATEWAY__PORT": str(gateway_port()),
    }
    environment |= {f"HITL_TOPICS__{name.upper()}": f"demo.{name.replace('_', '.')}" for name in TOPIC_FIELDS}
    return environment


def gateway_port() -> int:
    """HITL_GATEWAY__PORT if set; else the gateway's default 8000 if it is free, else any free port."""
    if os.environ.get("HITL_GATEWAY__PORT"):
        return int(os.environ["HITL_GATEWAY__PORT"])
    for port in (8000, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise RuntimeError("no free port for the gateway")


def run_demo() -> int:
    base = load_settings()
    environment = demo_environment(base)
    settings = load_settings(
        postgres_dsn=environment["HITL_POSTGRES_DSN"],
        topics={name: environment[f"HITL_TOPICS__{name.upper()}"] for name in TOPIC_FIELDS},
        argilla_bridge={"workspace": WORKSPACE},
    )
    desks = desks_for(settings)
    say(f"resetting the demo's topics, schema and {' and '.join(desk.where for desk in desks)}")
    reset(settings, desks)
    create_topics(settings)
    with psycopg.connect(settings.postgres_dsn.get_secret_value(), autocommit=True) as connection:
        migrate(connection)

    processes = WorkerProcesses(OUTPUT_DIR / "logs", environment)
    for port, name in enumerate(WORKERS, start=9411):
        processes.start(name, metrics_port=port)
    say(f"started {len(WORKERS)} processes: {', '.join(WORKERS)} (logs in {processes.log_dir})")
    gateway = f"http://127.0.0.1:{environment['HITL_GATEWAY__PORT']}"
    try:
        wait_for_gateway(gateway, processes)
        say(f"the gateway is up: {gateway}/demo is a page with the 👍/👎 widget")
        sent = produce_samples(settings, gateway)
        say(
            f"produced {sent['predictions']} predictions, {sent['feedback']} feedback events "
            f"({sent['feedback_over_http']} of them over HTTP through the gateway) and "
            f"{sent['extractions']} extractions"
        )
        routed = wait_for_routing(settings, sent, processes)
        say(
            f"routed: {routed['decisions']} automatic decisions, {routed['review_tasks']} review tasks, "
            f"{routed['extractions_valid']} valid extractions"
        )
        records = wait_for(
            lambda: sum(desk.count_items() for desk in desks),
            routed["review_tasks"],
            "review tasks to become items of the review tool",
            processes,
        )
        say(f"{records} items to review: {', '.join(desk.where for desk in desks)}")
        answered = answer_all(desks)
        say(f"simulated reviewers answered {answered} items")
        examples = wait_for(
            lambda: count_rows(
                settings, "SELECT count(*) FROM training_examples WHERE label_source = 'human'"
            ),
            answered,
            "the label-sink to store every resolved label",
            processes,
        )
        exports = export_all(settings)
        summary(settings, desks, sent, routed, records, examples, exports, gateway)
        # Only for a person at a terminal: a script or a test reading the output gets its exit.
        if sys.stdin.isatty() and sys.stdout.isatty():
            keep_running(processes, gateway)
    finally:
        codes = processes.stop_all()
        stopped = ", ".join(f"{name}={code}" for name, code in codes.items())
        say(f"workers stopped (exit codes: {stopped})")
    return 0


def say(line: str) -> None:
    print(f"[demo] {line}", flush=True)


def keep_running(processes: WorkerProcesses, gateway: str) -> None:
    say(f"the pipeline keeps running: vote on {gateway}/demo, then press Ctrl-C to stop it")
    try:
        while True:
            processes.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print()


# -- reset -----------------------------------------------------------------------------------------


def reset(settings: Settings, desks: list[ReviewDesk]) -> None:
    admin = AdminClient(admin_config(settings))
    existing = set(admin.list_topics(timeout=30).topics)
    ours = [topic for topic in project_topics(settings) if topic in existing]
    if ours:
        for future in admin.delete_topics(ours, operation_timeout=30).values():
            future.result(timeout=60)
        deadline = time.monotonic() + 60
        while set(ours) & set(admin.list_topics(timeout=30).topics) and time.monotonic() < deadline:
            time.sleep(0.5)
    with psycopg.connect(load_settings().postgres_dsn.get_secret_value(), autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        connection.execute(f"CREATE SCHEMA {SCHEMA}")
    for desk in desks:
        desk.reset()


# -- producing and waiting -------------------------------------------------------------------------


def wait_for_gateway(gateway: str, processes: WorkerProcesses) -> None:
    deadline = time.monotonic() + 60
    while True:
        processes.check_alive()
        try:
            with urllib.request.urlopen(f"{gateway}/healthz", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gateway did not answer at {gateway} in 60 s") from None
            time.sleep(0.3)


def post_feedback(gateway: str, lines: list[str]) -> int:
    """Posts feedback events to the gateway in arrays of 10, as a web backend would; returns the count."""
    for start in range(0, len(lines), 10):
        body = ("[" + ",".join(lines[start : start + 10]) + "]").encode()
        request = urllib.request.Request(
            f"{gateway}/v1/feedback", data=body, headers={"content-type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                accepted = json.load(response)["accepted"]
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"the gateway answered {error.code}: {error.read()[:500]!r}") from error
        if accepted != len(lines[start : start + 10]):
            raise RuntimeError(f"the gateway accepted {accepted} of {len(lines[start : start + 10])}")
    return len(lines)


def produce_samples(settings: Settings, gateway: str) -> dict[str, int]:
    samples = {
        name: (SAMPLES_DIR / f"{name}.jsonl").read_text().splitlines()
        for name in ("predictions", "feedback", "extractions")
    }
    over_http = samples["feedback"][: int(len(samples["feedback"]) * FEEDBACK_OVER_HTTP)]
    post_feedback(gateway, over_http)
    straight = {
        settings.topics.predictions: samples["predictions"],
        settings.topics.feedback: samples["feedback"][len(over_http) :],
        settings.topics.extractions: samples["extractions"],
    }
    output = KafkaOutput(settings, name="demo")
    output.send_and_acknowledge(
        (
            (
                topic,
                json.loads(line)["event_id"].encode(),
                line.encode(),
                [("content-type", b"application/json")],
            )
            for topic, lines in straight.items()
            for line in lines
        ),
        60,
    )
    return {name: len(lines) for name, lines in samples.items()} | {"feedback_over_http": len(over_http)}


def topic_size(consumer: Consumer, topic: str) -> int:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    total = 0
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        total += high - low
    return total


def wait_for_routing(settings: Settings, sent: dict[str, int], processes: WorkerProcesses) -> dict[str, int]:
    """Waits until every input is routed: one outcome per prediction, feedback and extraction."""
    consumer = Consumer(consumer_config(settings, f"demo-probe-{uuid.uuid4()}"))
    topics = settings.topics
    names = {
        "decisions": topics.decisions,
        "review_tasks": topics.review_tasks,
        "extractions_valid": topics.extractions_valid,
    }
    dead_letter_topics = [
        topics.dead_letter_topic(t) for t in (topics.predictions, topics.feedback, topics.extractions)
    ]

    def routed() -> dict[str, int]:
        counts = {name: topic_size(consumer, topic) for name, topic in names.items()}
        counts["dead_letters"] = sum(topic_size(consumer, topic) for topic in dead_letter_topics)
        return counts

    stored = lambda: count_rows(settings, "SELECT count(*) FROM feedback")  # noqa: E731
    wait_for(stored, sent["feedback"], "feedback-triage to store every feedback event", processes)
    # Audited predictions yield a decision and a task; all others exactly one of the two, and
    # every extraction a valid event or a task. The outputs settle when two reads agree.
    previous: dict[str, int] = {}
    deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        processes.check_alive()
        counts = routed()
        enough = (
            counts["decisions"]
            + counts["review_tasks"]
            + counts["extractions_valid"]
            + counts["dead_letters"]
        )
        if counts == previous and enough >= sent["predictions"] + sent["extractions"]:
            consumer.close()
            return counts
        previous = counts
        time.sleep(2)
    raise TimeoutError("the routers did not route every sample event in time")


def wait_for(count: Callable[[], int], expected: int, what: str, processes: WorkerProcesses) -> int:
    started = time.monotonic()
    deadline = started + STEP_TIMEOUT_SECONDS
    next_report = started + PROGRESS_EVERY_SECONDS
    while True:
        processes.check_alive()
        current = count()
        if current >= expected:
            return current
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"waited {STEP_TIMEOUT_SECONDS}s for {what}: {current} of {expected}")
        if now >= next_report:
            say(f"  waiting for {what}: {current} of {expected} after {now - started:.0f} s")
            next_report = now + PROGRESS_EVERY_SECONDS
        time.sleep(1)


def count_rows(settings: Settings, query: str) -> int:
    try:
        with psycopg.connect(settings.postgres_dsn.get_secret_value(), autocommit=True) as connection:
            row = connection.execute(query).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


# -- reviewing -------------------------------------------------------------------------------------


def answer_all(desks: list[ReviewDesk]) -> int:
    answers = {
        answer["event_id"]: answer
        for answer in map(json.loads, (SAMPLES_DIR / "review_answers.jsonl").read_text().splitlines())
    }
    return sum(desk.answer_all(answers) for desk in desks)


# -- results ---------------------------------------------------------------------------------------


def export_all(settings: Settings) -> dict[str, tuple[Path, int]]:
    from workers.contracts import TaskKind
    from workers.label_sink.export import export_examples

    directory = OUTPUT_DIR / "export"
    directory.mkdir(parents=True, exist_ok=True)
    exported = {}
    for kind in TaskKind:
        path = directory / f"{kind.value}.jsonl"
        result = export_examples(
            settings.postgres_dsn.get_secret_value(),
            kind,
            datetime(2000, 1, 1, tzinfo=UTC),
            "jsonl",
            path,
            progress=False,
        )
        exported[kind.value] = (path, result.count)
    return exported


def summary(
    settings: Settings,
    desks: list[ReviewDesk],
    sent: dict[str, int],
    routed: dict[str, int],
    records: int,
    examples: int,
    exports: dict[str, tuple[Path, int]],
    gateway: str,
) -> None:
    corrections = count_rows(settings, "SELECT count(*) FROM extraction_corrections")
    rag_reviews = count_rows(settings, "SELECT count(*) FROM rag_reviews")
    resolved = Consumer(consumer_config(settings, f"demo-probe-{uuid.uuid4()}"))
    training_topic = topic_size(resolved, settings.topics.training_examples)
    resolved_count = topic_size(resolved, settings.topics.review_resolved)
    resolved.close()
    lines: list[tuple[str, Any]] = [
        (
            "sample events in",
            f"{sent['predictions'] + sent['feedback'] + sent['extractions']} "
            f"({sent['predictions']} predictions, "
            f"{sent['feedback']} feedback, {sent['extractions']} extractions)",
        ),
        ("feedback over HTTP", f"{sent['feedback_over_http']} through the gateway ({gateway})"),
        ("automatic decisions", routed["decisions"]),
        ("review tasks", routed["review_tasks"]),
        ("valid extractions", routed["extractions_valid"]),
        ("dead letters", routed["dead_letters"]),
        ("review items", f"{records}: {', '.join(desk.where for desk in desks)}"),
        ("resolutions", resolved_count),
        (
            "training examples",
            f"{examples} rows in {SCHEMA}.training_examples, {training_topic} on "
            f"{settings.topics.training_examples}",
        ),
        ("extraction corrections", corrections),
        ("RAG answer reviews", rag_reviews),
    ]
    lines += [(f"export {kind}", f"{count} examples in {path}") for kind, (path, count) in exports.items()]
    width = max(len(label) for label, _ in lines)
    print()
    for label, value in lines:
        print(f"  {label:<{width}}  {value}")
    print(f"\n  Feedback widget demo page: {gateway}/demo  (API docs: {gateway}/docs)")
    for desk in desks:
        print(f"  {desk.sign_in()}")
    print()
