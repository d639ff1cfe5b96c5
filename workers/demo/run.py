"""`hitl-workers demo`: the whole pipeline on the bundled sample, on the running stack.

It works in a namespace of its own, emptied at the start of every run: topics `demo.*`, the
PostgreSQL schema `demo` and the Argilla workspace `hitl-demo`. Steps:

1. start every worker as its own process (logs in .stack/demo/logs/);
2. produce the sample predictions, feedback and extractions as JSON, as applications do;
3. wait until the routers have routed everything and the review tasks are records in Argilla;
4. let simulated reviewers answer every record through Argilla's API;
5. wait until the label-sink has written the resolved labels, and export them for fine-tuning;
6. print what landed where, and stop the workers. The stack keeps running, so the records,
   responses and tables stay there to look at.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import argilla as rg
import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from workers.config import Settings, load_settings
from workers.demo.processes import WorkerProcesses
from workers.demo.reviewers import answer_values, ensure_annotator, sign_in
from workers.runtime.kafka_config import admin_config
from workers.runtime.topics import create_topics, project_topics
from workers.storage.migrations import migrate

REPO_DIR = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO_DIR / "samples"
OUTPUT_DIR = REPO_DIR / ".stack" / "demo"
SCHEMA = "demo"
WORKSPACE = "hitl-demo"
REVIEWERS = ("demo-reviewer-ana", "demo-reviewer-ben")
REVIEWER_PASSWORD = "demo-reviewer-12345"
WORKERS = (
    "band-router",
    "feedback-triage",
    "extraction-validator",
    "argilla-publisher",
    "argilla-collector",
    "label-sink",
)
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
        "HITL_ARGILLA_BRIDGE__RECONCILE_INTERVAL_SECONDS": "10",
        "HITL_GROUP_ID_PREFIX": "demo",
        "HITL_RUNTIME__BATCH_WAIT_SECONDS": "0.2",
    }
    environment |= {f"HITL_TOPICS__{name.upper()}": f"demo.{name.replace('_', '.')}" for name in TOPIC_FIELDS}
    return environment


def run_demo() -> int:
    base = load_settings()
    environment = demo_environment(base)
    settings = load_settings(
        postgres_dsn=environment["HITL_POSTGRES_DSN"],
        topics={name: environment[f"HITL_TOPICS__{name.upper()}"] for name in TOPIC_FIELDS},
        argilla_bridge={"workspace": WORKSPACE},
    )
    owner = rg.Argilla(api_url=settings.argilla_api_url, api_key=settings.argilla_api_key.get_secret_value())
    say("resetting the demo's topics, schema and Argilla workspace")
    reset(settings, owner)
    create_topics(settings)
    with psycopg.connect(settings.postgres_dsn.get_secret_value(), autocommit=True) as connection:
        migrate(connection)

    processes = WorkerProcesses(OUTPUT_DIR / "logs", environment)
    for port, name in enumerate(WORKERS, start=9411):
        processes.start(name, metrics_port=port)
    say(f"started {len(WORKERS)} workers: {', '.join(WORKERS)} (logs in {processes.log_dir})")
    try:
        sent = produce_samples(settings)
        say(
            f"produced {sent['predictions']} predictions, {sent['feedback']} feedback events and "
            f"{sent['extractions']} extractions"
        )
        routed = wait_for_routing(settings, sent, processes)
        say(
            f"routed: {routed['decisions']} automatic decisions, {routed['review_tasks']} review tasks, "
            f"{routed['extractions_valid']} valid extractions"
        )
        records = wait_for(
            lambda: count_records(owner),
            routed["review_tasks"],
            "review tasks to become Argilla records",
            processes,
        )
        say(f"Argilla: {records} records to review in workspace {WORKSPACE}")
        answered = answer_all(owner, settings)
        say(f"simulated reviewers answered {answered} records")
        examples = wait_for(
            lambda: count_rows(
                settings, "SELECT count(*) FROM training_examples WHERE label_source = 'human'"
            ),
            answered,
            "the label-sink to store every resolved label",
            processes,
        )
        exports = export_all(settings)
        summary(settings, sent, routed, records, examples, exports)
    finally:
        codes = processes.stop_all()
        stopped = ", ".join(f"{name}={code}" for name, code in codes.items())
        say(f"workers stopped (exit codes: {stopped})")
    return 0


def say(line: str) -> None:
    print(f"[demo] {line}", flush=True)


# -- reset -----------------------------------------------------------------------------------------


def reset(settings: Settings, owner: rg.Argilla) -> None:
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
    workspace = owner.workspaces(WORKSPACE)
    if workspace is not None:
        for dataset in workspace.datasets:
            dataset.delete()
    else:
        workspace = rg.Workspace(name=WORKSPACE, client=owner).create()
    for username in REVIEWERS:
        ensure_annotator(owner, workspace, username, REVIEWER_PASSWORD)


# -- producing and waiting -------------------------------------------------------------------------


def produce_samples(settings: Settings) -> dict[str, int]:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 10})
    sent: dict[str, int] = {}
    for name, topic in (
        ("predictions", settings.topics.predictions),
        ("feedback", settings.topics.feedback),
        ("extractions", settings.topics.extractions),
    ):
        count = 0
        for line in (SAMPLES_DIR / f"{name}.jsonl").read_text().splitlines():
            event = json.loads(line)
            producer.produce(
                topic,
                key=event["event_id"].encode(),
                value=line.encode(),
                headers=[("content-type", b"application/json")],
            )
            producer.poll(0)
            count += 1
        sent[name] = count
    if producer.flush(60):
        raise RuntimeError("the broker did not acknowledge the sample events")
    return sent


def topic_size(consumer: Consumer, topic: str) -> int:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    total = 0
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        total += high - low
    return total


def wait_for_routing(settings: Settings, sent: dict[str, int], processes: WorkerProcesses) -> dict[str, int]:
    """Waits until every input is routed: one outcome per prediction, feedback and extraction."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"demo-probe-{uuid.uuid4()}"}
    )
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
    deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
    while True:
        processes.check_alive()
        current = count()
        if current >= expected:
            return current
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {STEP_TIMEOUT_SECONDS}s for {what}: {current} of {expected}")
        time.sleep(1)


def count_rows(settings: Settings, query: str) -> int:
    try:
        with psycopg.connect(settings.postgres_dsn.get_secret_value(), autocommit=True) as connection:
            row = connection.execute(query).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def datasets(owner: rg.Argilla) -> Iterator[rg.Dataset]:
    workspace = owner.workspaces(WORKSPACE)
    if workspace is not None:
        # Fetched by name, so that each comes with its settings, which reading suggestions needs.
        for listed in workspace.datasets:
            dataset = owner.datasets(listed.name, workspace=WORKSPACE)
            if dataset is not None:
                yield dataset


def count_records(owner: rg.Argilla) -> int:
    return sum(len(list(dataset.records)) for dataset in datasets(owner))


# -- reviewing -------------------------------------------------------------------------------------


def answer_all(owner: rg.Argilla, settings: Settings) -> int:
    answers = {
        answer["event_id"]: answer
        for answer in map(json.loads, (SAMPLES_DIR / "review_answers.jsonl").read_text().splitlines())
    }
    reviewers = [sign_in(settings.argilla_api_url, name, REVIEWER_PASSWORD) for name in REVIEWERS]
    answered = 0
    for dataset in datasets(owner):
        for record in dataset.records:
            answer = answers.get(str(record.id))
            if answer is None:
                continue
            reviewers[answered % len(reviewers)].submit(record._server_id, answer_values(answer))
            answered += 1
    return answered


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
    sent: dict[str, int],
    routed: dict[str, int],
    records: int,
    examples: int,
    exports: dict[str, tuple[Path, int]],
) -> None:
    corrections = count_rows(settings, "SELECT count(*) FROM extraction_corrections")
    rag_reviews = count_rows(settings, "SELECT count(*) FROM rag_reviews")
    resolved = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"demo-probe-{uuid.uuid4()}"}
    )
    training_topic = topic_size(resolved, settings.topics.training_examples)
    resolved_count = topic_size(resolved, settings.topics.review_resolved)
    resolved.close()
    lines: list[tuple[str, Any]] = [
        (
            "sample events in",
            f"{sum(sent.values())} ({sent['predictions']} predictions, "
            f"{sent['feedback']} feedback, {sent['extractions']} extractions)",
        ),
        ("automatic decisions", routed["decisions"]),
        ("review tasks", routed["review_tasks"]),
        ("valid extractions", routed["extractions_valid"]),
        ("dead letters", routed["dead_letters"]),
        ("records in Argilla", f"{records} in workspace {WORKSPACE}"),
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
    print(
        f"\n  Argilla: {settings.argilla_api_url}  (owner argilla / 12345678; reviewers "
        f"{', '.join(REVIEWERS)} / {REVIEWER_PASSWORD})"
    )
    print()
