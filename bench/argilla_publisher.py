"""argilla-publisher against the real Argilla: bulk batches against one record at a time, and latency.

    .venv/bin/python bench/argilla_publisher.py [--bulk-tasks 1000] [--single-tasks 200]
        [--batch 200] [--rate 20] [--seconds 20]

1. Throughput: a topic pre-filled with moderation review tasks is drained by the publisher worker
   (the real runtime and sink), once logging bulk batches of `--batch` records and once with a batch
   size of 1 (one request per record), each into a workspace of its own. Records per second is
   tasks / time until Argilla's search counts them all.
2. Latency: tasks are produced at a steady `--rate` for `--seconds` while the publisher runs; the
   time from a task's production to its record first appearing in Argilla's search (polled every
   50 ms, sorted by insertion) gives p50 and p99.

Needs the local stack's settings (`eval "$(deploy/local/stack env)"`). Cleans up its topics,
datasets and workspaces.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import argilla as rg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.config import Settings, load_settings
from workers.contracts import (
    Item,
    ModelInfo,
    Prediction,
    ReviewReason,
    ReviewTask,
    Suggestion,
    TaskKind,
    encode,
)
from workers.review.publisher import argilla_publisher
from workers.runtime.kafka_config import admin_config, producer_config
from workers.runtime.loop import Runner
from workers.runtime.topics import dead_letter_topic_config

PARTITIONS = 3
POLL_SECONDS = 0.05


def task(index: int) -> ReviewTask:
    prediction = Prediction(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        source="bench",
        task="comments",
        model=ModelInfo(name="toxicity-bert", version="2.3.1"),
        item=Item(
            id=f"item-{index}", content_type="text/plain", text=f"comment {index}: " + "lorem ipsum " * 40
        ),
        scores={"toxic": 0.61, "ok": 0.39},
    )
    return ReviewTask(
        task_id=prediction.event_id,
        kind=TaskKind.MODERATION,
        reason=ReviewReason.GREY_BAND,
        priority=1,
        source=prediction,
        suggestion=Suggestion(label="toxic", score=0.61, agent="toxicity-bert@2.3.1"),
        created_at=datetime.now(UTC),
    )


@contextmanager
def scenario(base: Settings, client: rg.Argilla, name: str, batch: int) -> Iterator[Settings]:
    """Settings with topics and a workspace of their own, removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    tasks_topic = f"bench-tasks-{name}-{suffix}"
    admin = AdminClient(admin_config(base))
    topics = [
        NewTopic(tasks_topic, num_partitions=PARTITIONS, replication_factor=1),
        NewTopic(
            tasks_topic + ".dlq", num_partitions=1, replication_factor=1, config=dead_letter_topic_config()
        ),
    ]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    workspace = f"bench-{name}-{suffix}"
    settings = load_settings(
        group_id_prefix=f"bench-{suffix}",
        metrics_port=0,
        topics={"review_tasks": tasks_topic},
        argilla_bridge={"workspace": workspace, "publish_batch_size": batch},
    )
    try:
        yield settings
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = client.workspaces(name=workspace)
        if found is not None:
            for dataset in found.datasets:
                dataset.delete()
            found.delete()
        for future in admin.delete_topics([t.topic for t in topics]).values():
            future.result(timeout=30)


def produce(settings: Settings, tasks: list[ReviewTask], rate: float | None = None) -> dict[str, float]:
    """Produces the tasks (at `rate` per second if given); each task id's production time."""
    producer = Producer(producer_config(settings, **{"linger.ms": 0}))
    produced: dict[str, float] = {}
    started = time.monotonic()
    for index, item in enumerate(tasks):
        if rate:
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        produced[str(item.task_id)] = time.time()
        producer.produce(settings.topics.review_tasks, key=str(item.task_id).encode(), value=encode(item))
        producer.poll(0)
    assert producer.flush(60) == 0
    return produced


def dataset_id(client: rg.Argilla, workspace: str) -> str | None:
    """The workspace's dataset once it is ready (published, with its search index)."""
    workspaces = client.http_client.get("/api/v1/me/workspaces").json()["items"]
    ids = {w["id"] for w in workspaces if w["name"] == workspace}
    for dataset in client.http_client.get("/api/v1/me/datasets").json()["items"]:
        if dataset["workspace_id"] in ids and dataset["status"] == "ready":
            return str(dataset["id"])
    return None


def search(client: rg.Argilla, dataset: str, offset: int, limit: int) -> dict[str, Any]:
    body = {"sort": [{"scope": {"entity": "record", "property": "inserted_at"}, "order": "asc"}]}
    response = client.http_client.post(
        f"/api/v1/datasets/{dataset}/records/search", params={"offset": offset, "limit": limit}, json=body
    )
    if response.status_code >= 500:
        # A new dataset's search index answers 503 until its shards are allocated.
        return {"total": 0, "items": []}
    response.raise_for_status()
    return dict(response.json())


def wait_for_dataset(client: rg.Argilla, workspace: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while (found := dataset_id(client, workspace)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no dataset in {workspace}")
        time.sleep(POLL_SECONDS)
    return found


@contextmanager
def publisher(settings: Settings) -> Iterator[None]:
    runner = Runner(argilla_publisher(settings), settings)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        runner.stop()
        thread.join(timeout=60)


def throughput(base: Settings, client: rg.Argilla, name: str, batch: int, count: int) -> float:
    tasks = [task(i) for i in range(count)]
    with scenario(base, client, name, batch) as settings, publisher(settings):
        # The dataset is created before timing, so that both runs time record logging alone.
        produce(settings, [task(-1)])
        dataset = wait_for_dataset(client, settings.argilla_bridge.workspace)
        while search(client, dataset, 0, 1)["total"] < 1:
            time.sleep(POLL_SECONDS)
        started = time.monotonic()
        produce(settings, tasks)
        while search(client, dataset, 0, 1)["total"] < count + 1:
            time.sleep(POLL_SECONDS)
        return count / (time.monotonic() - started)


def latency(base: Settings, client: rg.Argilla, batch: int, rate: float, seconds: float) -> list[float]:
    with scenario(base, client, "latency", batch) as settings, publisher(settings):
        produce(settings, [task(-1)])
        dataset = wait_for_dataset(client, settings.argilla_bridge.workspace)
        seen = 0
        while seen < 1:
            seen = len(search(client, dataset, 0, 10)["items"])
        tasks = [task(i) for i in range(int(rate * seconds))]
        produced: dict[str, float] = {}
        producing = threading.Thread(target=lambda: produced.update(produce(settings, tasks, rate)))
        producing.start()
        visible: dict[str, float] = {}
        deadline = time.monotonic() + seconds + 120
        while len(visible) < len(tasks) and time.monotonic() < deadline:
            page = search(client, dataset, seen, 1000)["items"]
            now = time.time()
            for item in page:
                visible.setdefault(str(item["record"]["external_id"]), now)
            seen += len(page)
            time.sleep(POLL_SECONDS)
        producing.join()
    return sorted(visible[task_id] - produced[task_id] for task_id in visible if task_id in produced)


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, round(share * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bulk-tasks", type=int, default=1000)
    parser.add_argument("--single-tasks", type=int, default=200)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="tasks per second in the latency run")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()

    base = load_settings()
    client = rg.Argilla(
        api_url=base.argilla_api_url, api_key=base.argilla_api_key.get_secret_value(), timeout=60
    )

    bulk = throughput(base, client, "bulk", args.batch, args.bulk_tasks)
    print(f"bulk batches of {args.batch}: {bulk:8.1f} records/s ({args.bulk_tasks} tasks)", flush=True)
    single = throughput(base, client, "single", 1, args.single_tasks)
    print(f"one at a time:        {single:8.1f} records/s ({args.single_tasks} tasks)", flush=True)
    print(f"bulk / one at a time: {bulk / single:8.1f}x", flush=True)

    latencies = latency(base, client, args.batch, args.rate, args.seconds)
    print(
        f"latency, topic → visible in Argilla, at {args.rate:g} tasks/s for {args.seconds:g} s "
        f"({len(latencies)} tasks): p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, mean {statistics.fmean(latencies) * 1000:.0f} ms",
        flush=True,
    )


if __name__ == "__main__":
    main()
