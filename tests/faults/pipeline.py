"""One whole pipeline for the fault suite: its namespace, its workers, its feed, its reviewers, and
the reconciliation of every input event id against what came out."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import argilla as rg
import psycopg
from confluent_kafka import Producer

from tests.faults.events import POLICY, Event
from tests.faults.reader import Message, read_to_end
from tests.faults.workers_processes import WORKERS, WorkerSet
from tests.support.processes import free_port
from tests.support.services import REPO_DIR, Services
from workers.config import Settings, load_settings
from workers.contracts import Decision, LabelSource, ReviewTask, TrainingExample, ValidExtraction, decode
from workers.demo.reviewers import SignedInReviewer, ensure_annotator, post_response, sign_in
from workers.label_sink.mapping import example_id
from workers.runtime.dead_letters import read_dead_letter_headers
from workers.runtime.topics import create_topics
from workers.storage.migrations import migrate

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
REVIEWER_PASSWORD = "faults-reviewer-12345"
MAX_VALUE_BYTES = 65_536
# Fields that say when and from which message a worker made an output, not what it says: a
# redelivery after a crash carries a later time (a decision's `decided_at`, a valid extraction's
# `validated_at`, a task's `created_at`), and a training example made again from a re-emitted,
# identical resolution names that later message (`lineage` partition and offset, and its Kafka
# timestamp as `created_at`). Resolutions have none: they are a pure function of the record's
# answers (issue 9, fix 2).
PROVENANCE_FIELDS: dict[Any, tuple[str, ...]] = {
    Decision: ("decided_at",),
    ValidExtraction: ("validated_at",),
    ReviewTask: ("created_at",),
    TrainingExample: ("created_at", "lineage.partition", "lineage.offset"),
}


@dataclass
class Observed:
    """Everything the pipeline produced so far, by key."""

    topics: dict[str, dict[bytes, list[Message]]]
    dead_letters: dict[str, dict[bytes, list[str]]]
    feedback_rows: dict[str, int]
    example_rows: dict[str, int]
    correction_rows: dict[str, int]
    rag_rows: dict[str, int]
    records: dict[str, list[dict[str, Any]]]


@dataclass
class Verdict:
    """The reconciliation of a set of events."""

    events: int
    outputs: dict[str, int]
    dead_letters: int
    lost: dict[str, str]
    duplicated: list[str]
    redelivered_identical: int
    redelivered_restamped: int


@dataclass
class Pipeline:
    services: Services
    work_dir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    fed: list[Event] = field(default_factory=list)
    known_lost: set[str] = field(default_factory=set)
    """Events an earlier scenario lost: reported there, not waited for again."""
    hostile_answers: dict[str, str] = field(default_factory=dict)
    """Task id → the hostile answer's kind: these must be sent back or dead-lettered, never resolved."""

    def __post_init__(self) -> None:
        self.namespace = f"faults-{self.run_id}"
        self.schema = f"faults_{self.run_id}"
        self.workspace = f"faults-{self.run_id}"
        self.collector_port = free_port()
        self.collector_urls: set[str] = set()
        self.workspace_id = ""
        dsn = self.services.postgres_dsn
        separator = "&" if "?" in dsn else "?"
        self.dsn = f"{dsn}{separator}options={quote('-csearch_path=' + self.schema)}"
        self.topics = {name: f"{self.namespace}.{name.replace('_', '.')}" for name in TOPIC_FIELDS}
        policy = self.work_dir / "bands.toml"
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(POLICY)
        self.environment = {
            "HITL_KAFKA_BOOTSTRAP": self.services.kafka_bootstrap,
            "HITL_ARGILLA_API_URL": self.services.argilla_api_url,
            "HITL_ARGILLA_API_KEY": self.services.argilla_api_key,
            "HITL_POSTGRES_DSN": self.dsn,
            "HITL_GROUP_ID_PREFIX": self.namespace,
            "HITL_BAND_ROUTER__POLICY_FILE": str(policy),
            "HITL_FEEDBACK_TRIAGE__POSITIVE_SAMPLE_RATE": "0",
            "HITL_ARGILLA_BRIDGE__WORKSPACE": self.workspace,
            "HITL_ARGILLA_BRIDGE__RECONCILE_INTERVAL_SECONDS": "10",
            "HITL_RUNTIME__BATCH_WAIT_SECONDS": "0.2",
            "HITL_RUNTIME__RETRY_INITIAL_SECONDS": "0.5",
            "HITL_RUNTIME__RETRY_MAX_SECONDS": "5",
            "HITL_RUNTIME__MAX_VALUE_BYTES": str(MAX_VALUE_BYTES),
            **self.collector_environment(self.collector_port),
        } | {f"HITL_TOPICS__{name.upper()}": topic for name, topic in self.topics.items()}
        self.settings: Settings = load_settings(
            kafka_bootstrap=self.services.kafka_bootstrap,
            postgres_dsn=self.dsn,
            argilla_api_url=self.services.argilla_api_url,
            argilla_api_key=self.services.argilla_api_key,
            topics=self.topics,
            argilla_bridge={"workspace": self.workspace},
        )
        self.workers = WorkerSet(self.work_dir / "logs", self.environment)
        self.owner = rg.Argilla(
            api_url=self.services.argilla_api_url, api_key=self.services.argilla_api_key, timeout=60
        )
        self.producer = Producer(
            {
                "bootstrap.servers": self.services.kafka_bootstrap,
                "linger.ms": 20,
                "message.timeout.ms": 600_000,
                "message.max.bytes": 4_000_000,
                "enable.idempotence": True,
            }
        )
        self.delivery_errors: list[str] = []
        self.reviewer = SimulatedReviewers(self)

    def collector_environment(self, port: int) -> dict[str, str]:
        self.collector_urls.add(f"http://127.0.0.1:{port}/argilla/webhook")
        return {
            "HITL_ARGILLA_BRIDGE__COLLECTOR_PORT": str(port),
            "HITL_ARGILLA_BRIDGE__COLLECTOR_PUBLIC_URL": f"http://127.0.0.1:{port}/argilla/webhook",
        }

    @property
    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.collector_port}/argilla/webhook"

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        create_topics(self.settings)
        # Created up front: the collector's own dead letters (issue 9, fix 1) land here.
        with psycopg.connect(self.services.postgres_dsn, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            migrate(connection)
        workspace = rg.Workspace(name=self.workspace, client=self.owner).create()
        self.workspace_id = str(workspace.id)
        names = [f"faults-{self.run_id}-ana", f"faults-{self.run_id}-ben"]
        for username in names:
            ensure_annotator(self.owner, workspace, username, REVIEWER_PASSWORD)
        self.reviewer.sign_in(names)
        for name in WORKERS:
            self.workers.start(name)
        self.reviewer.start()

    def close(self) -> dict[str, int]:
        self.reviewer.stop()
        codes = self.workers.stop_all()
        http = self.owner.http_client
        for webhook in http.get("/api/v1/webhooks").json()["items"]:
            if webhook["url"] in self.collector_urls:
                http.delete(f"/api/v1/webhooks/{webhook['id']}")
        return codes

    # -- feeding -----------------------------------------------------------------------------------

    def feed(self, events: Iterable[Event], seconds: float = 0.0) -> None:
        """Produces the events, spread over `seconds`; the producer keeps them while the broker is away."""
        events = list(events)
        pause = seconds / len(events) if events and seconds else 0.0
        for event in events:
            self.fed.append(event)
            self.reviewer.expect(event)
            while True:
                try:
                    self.producer.produce(
                        self.topics[event.topic],
                        key=event.key,
                        value=event.value,
                        headers=event.headers,
                        on_delivery=self._delivered,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.producer.poll(0)
            if pause:
                time.sleep(pause)

    def feed_in_background(self, events: list[Event], seconds: float) -> threading.Thread:
        thread = threading.Thread(target=self.feed, args=(events, seconds), daemon=True)
        thread.start()
        return thread

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self.delivery_errors.append(str(error))

    def flush(self, timeout: float = 600) -> None:
        remaining = self.producer.flush(timeout)
        assert remaining == 0, f"{remaining} input events not acknowledged by the broker"
        assert self.delivery_errors == [], self.delivery_errors[:5]

    # -- observing ---------------------------------------------------------------------------------

    def observe(self) -> Observed:
        bootstrap = self.services.kafka_bootstrap
        by_key: dict[str, dict[bytes, list[Message]]] = {}
        for name in (
            "decisions",
            "extractions_valid",
            "review_tasks",
            "review_resolved",
            "training_examples",
        ):
            grouped: dict[bytes, list[Message]] = defaultdict(list)
            for message in read_to_end(bootstrap, self.topics[name]):
                grouped[message.key or b""].append(message)
            by_key[name] = grouped
        dead_letters: dict[str, dict[bytes, list[str]]] = {}
        for name in (
            "predictions",
            "feedback",
            "extractions",
            "review_tasks",
            "review_resolved",
            "decisions",
        ):
            grouped_reasons: dict[bytes, list[str]] = defaultdict(list)
            topic = self.settings.topics.dead_letter_topic(self.topics[name])
            try:
                messages = read_to_end(bootstrap, topic)
            except RuntimeError:
                messages = []  # a dead-letter topic this version does not create
            for message in messages:
                reason = read_dead_letter_headers(list(message.headers.items())).get("reason", "?")
                grouped_reasons[message.key or b""].append(reason)
            dead_letters[name] = grouped_reasons
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as connection:

            def counts(query: str) -> dict[str, int]:
                return {str(key): int(count) for key, count in connection.execute(query).fetchall()}

            feedback_rows = counts("SELECT event_id, count(*) FROM feedback GROUP BY event_id")
            example_rows = counts(
                "SELECT task_id, count(*) FROM training_examples"
                " WHERE label_source = 'human' GROUP BY task_id"
            )
            correction_rows = counts(
                "SELECT extraction_event_id, count(*) FROM extraction_corrections"
                " GROUP BY extraction_event_id"
            )
            rag_rows = counts(
                "SELECT feedback_event_id, count(*) FROM rag_reviews GROUP BY feedback_event_id"
            )
        return Observed(
            by_key, dead_letters, feedback_rows, example_rows, correction_rows, rag_rows, self.records()
        )

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Argilla's records of the workspace, by external id (the task id)."""
        http = self.owner.http_client
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        listed = http.get("/api/v1/me/datasets")
        listed.raise_for_status()
        for dataset in listed.json()["items"]:
            if dataset["workspace_id"] != self.workspace_id:
                continue
            offset = 0
            while True:
                response = http.get(
                    f"/api/v1/datasets/{dataset['id']}/records",
                    params={"include": ["responses"], "offset": offset, "limit": 1000},
                )
                response.raise_for_status()
                items = response.json()["items"]
                for record in items:
                    found[str(record["external_id"])].append(record)
                if len(items) < 1000:
                    break
                offset += len(items)
        return found

    # -- reconciling -------------------------------------------------------------------------------

    def reconcile(self, events: list[Event], observed: Observed) -> Verdict:
        lost: dict[str, str] = {}
        outputs: dict[str, int] = defaultdict(int)
        for event in events:
            missing = self._dead_letter(event, observed, outputs) + self._direct(event, observed, outputs)
            if event.expected.task:
                missing += self._review_path(event, observed, outputs)
            if missing:
                lost[event.event_id] = f"{event.topic} {event.note}: missing " + ", ".join(missing)
        dead = outputs.pop("dead letters", 0)
        duplicated, identical, restamped = self.duplicates(events, observed)
        return Verdict(len(events), dict(outputs), dead, lost, duplicated, identical, restamped)

    @staticmethod
    def _dead_letter(event: Event, observed: Observed, outputs: dict[str, int]) -> list[str]:
        due = event.expected
        if due.dead_letter is None:
            return []
        reasons = observed.dead_letters[event.topic].get(event.key or b"", [])
        if not set(reasons) & ({due.dead_letter} | due.dead_letter_reasons):
            return [f"dead letter {due.dead_letter} (got {reasons or 'none'})"]
        outputs["dead letters"] += 1
        return []

    @staticmethod
    def _direct(event: Event, observed: Observed, outputs: dict[str, int]) -> list[str]:
        key = event.key or b""
        due = event.expected
        checks = (
            (due.decision, "decisions", key in observed.topics["decisions"]),
            (due.valid_extraction, "valid extractions", key in observed.topics["extractions_valid"]),
            (due.feedback_row, "feedback rows", event.event_id in observed.feedback_rows),
        )
        missing = []
        for owed, name, present in checks:
            if owed and present:
                outputs[name] += 1
            elif owed:
                missing.append(name)
        return missing

    def _review_path(self, event: Event, observed: Observed, outputs: dict[str, int]) -> list[str]:
        key = event.key or b""
        if key not in observed.topics["review_tasks"]:
            return ["review task"]
        outputs["review tasks"] += 1
        records = observed.records.get(event.event_id, [])
        if not records:
            return ["Argilla record"]
        outputs["Argilla records"] += 1
        hostile = self.hostile_answers.get(event.event_id)
        resolved = key in observed.topics["review_resolved"]
        if hostile is not None:
            return self._sent_back(
                hostile, records[0], resolved, key in observed.dead_letters["review_resolved"], outputs
            )
        if not resolved:
            return ["resolution"]
        outputs["resolutions"] += 1
        return self._training_data(event, observed, outputs)

    @staticmethod
    def _sent_back(
        hostile: str, record: dict[str, Any], resolved: bool, dead_lettered: bool, outputs: dict[str, int]
    ) -> list[str]:
        """A hostile answer is shown back to its reviewer or dead-lettered, and never resolved."""
        if resolved:
            return [f"hostile answer ({hostile}) must not be resolved"]
        if not ((record.get("fields") or {}).get("review_feedback") or dead_lettered):
            return [f"hostile answer ({hostile}) sent back or dead-lettered"]
        outputs["answers sent back"] += 1
        return []

    @staticmethod
    def _training_data(event: Event, observed: Observed, outputs: dict[str, int]) -> list[str]:
        task_id = event.event_id
        example_key = str(example_id(LabelSource.HUMAN, uuid.UUID(task_id))).encode()
        checks = (
            (True, "training_examples row", task_id in observed.example_rows),
            (True, "training example on Kafka", example_key in observed.topics["training_examples"]),
            (event.kind == "extraction", "extraction_corrections row", task_id in observed.correction_rows),
            (event.kind == "rag_answer", "rag_reviews row", task_id in observed.rag_rows),
        )
        missing = [name for owed, name, present in checks if owed and not present]
        if not missing:
            outputs["training examples"] += 1
        return missing

    def duplicates(self, events: list[Event], observed: Observed) -> tuple[list[str], int, int]:
        """Keys with two different contents, two rows or two records; and the harmless redeliveries."""
        ids = {event.event_id for event in events}
        keys = {event.key or b"" for event in events}
        example_keys = {str(example_id(LabelSource.HUMAN, uuid.UUID(i))).encode() for i in ids}
        duplicated: list[str] = []
        identical = restamped = 0
        types: dict[str, Any] = {
            "decisions": Decision,
            "extractions_valid": ValidExtraction,
            "review_tasks": ReviewTask,
            "training_examples": TrainingExample,
        }
        for name, grouped in observed.topics.items():
            wanted = example_keys if name == "training_examples" else keys
            for key, messages in grouped.items():
                if key not in wanted or len(messages) < 2:
                    continue
                contents = {m.value for m in messages}
                if len(contents) == 1:
                    identical += len(messages) - 1
                    continue
                event_type = types.get(name)
                if event_type is not None and len({_normalised(m, event_type) for m in messages}) == 1:
                    restamped += len(messages) - 1
                    continue
                duplicated.append(
                    f"{name}: key {key.decode(errors='replace')} has {len(contents)} different contents"
                )
        for label, rows in (
            ("feedback", observed.feedback_rows),
            ("training_examples", observed.example_rows),
            ("extraction_corrections", observed.correction_rows),
            ("rag_reviews", observed.rag_rows),
        ):
            duplicated += [f"{label}: {rows[i]} rows for {i}" for i in ids if rows.get(i, 0) > 1]
        duplicated += [
            f"Argilla: {len(observed.records[i])} records for task {i}"
            for i in ids
            if len(observed.records.get(i, [])) > 1
        ]
        return duplicated, identical, restamped

    def settle(
        self, events: list[Event], timeout: float = 240, check: Callable[[], None] | None = None
    ) -> tuple[Verdict, float]:
        """Waits until nothing fed so far is missing; the verdict on `events` and the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            self.workers.supervise()
            if check is not None:
                check()
            try:
                observed = self.observe()
            # Any failure to look (a service still coming back) is a reason to look again, until the deadline.
            except Exception as error:
                observed = None
                last_error = f"{type(error).__name__}: {error}"
            if observed is not None:
                everything = self.reconcile(self.fed, observed)
                if not set(everything.lost) - self.known_lost or time.monotonic() > deadline:
                    verdict = self.reconcile(events, observed)
                    self.known_lost |= set(verdict.lost)
                    return verdict, time.monotonic() - started
            elif time.monotonic() > deadline:
                raise TimeoutError(f"could not observe the pipeline: {last_error}")
            time.sleep(3)


def _normalised(message: Message, event_type: Any) -> str:
    event = decode(message.value, list(message.headers.items()), event_type)
    data = event.model_dump(mode="json")
    for path in PROVENANCE_FIELDS[event_type]:
        *parents, leaf = path.split(".")
        holder = data
        for parent in parents:
            holder = holder.get(parent) or {}
        holder.pop(leaf, None)
    return json.dumps(data, sort_keys=True)


class SimulatedReviewers:
    """Annotators who answer every record they have an answer for, through Argilla's own endpoints."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.answers: dict[str, tuple[str, dict[str, Any]]] = {}
        self.answered: set[str] = set()
        self.reviewers: list[SignedInReviewer] = []
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors = 0
        self.last_error = ""
        self.lock = threading.Lock()

    def sign_in(self, usernames: list[str]) -> None:
        url = self.pipeline.services.argilla_api_url
        self.reviewers = [sign_in(url, name, REVIEWER_PASSWORD) for name in usernames]

    def expect(self, event: Event) -> None:
        if event.expected.task and event.answer is not None:
            self.answers[event.event_id] = (event.kind, event.answer)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            if not self.paused.is_set():
                try:
                    count = self.answer_pending(count)
                # Argilla stopped, restarting or without its database: a person would try again later.
                except Exception as error:
                    self.errors += 1
                    self.last_error = f"{type(error).__name__}: {str(error)[:300]}"
            self._stop.wait(2)

    def answer_pending(self, count: int = 0, only: set[str] | None = None) -> int:
        with self.lock:
            for task_id, records in self.pipeline.records().items():
                if task_id in self.answered or task_id not in self.answers:
                    continue
                if only is not None and task_id not in only:
                    continue
                record = records[0]
                if record.get("responses"):
                    self.answered.add(task_id)
                    continue
                _, values = self.answers[task_id]
                self.submit(record["id"], values, count)
                self.answered.add(task_id)
                count += 1
        return count

    def submit(self, record_id: str, values: dict[str, Any], count: int = 0) -> None:
        reviewer = self.reviewers[count % len(self.reviewers)]
        body = {"values": {name: {"value": value} for name, value in values.items()}, "status": "submitted"}
        post_response(reviewer.http, record_id, body)


def digest(value: bytes | None) -> str:
    return hashlib.sha256(value or b"").hexdigest()[:12]


__all__ = ["REPO_DIR", "Pipeline", "Verdict"]
