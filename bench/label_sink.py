"""The label-sink's write rate: its sink against a raw COPY of the same rows into the same table.

    .venv/bin/python bench/label_sink.py [--examples 50000] [--batch 500] [--kind moderation]

The baseline COPYs the sink's rows, built beforehand, straight into empty tables (for moderation
`training_examples` alone; for RAG answers and extractions also their companion table), one
transaction per batch. The sink gets the same resolved reviews batch by batch, as the runtime
hands them over, and writes them in one transaction per batch of the same size (for RAG answers
and extractions, with their companion rows), in a fresh schema of its own:

- "sink": as in the worker, where the handler has already mapped each message (building the
  TrainingExample it produces) and handed the mapping to the store; the handler is timed apart;
- "sink, cold": `write` alone, mapping every event itself;
- "sink, replay": the same batches again, every row already stored (the upsert path).

Prints each rate and the ratio to the raw COPY. Needs HITL_POSTGRES_DSN (`deploy/local/stack env`
prints it). The machine's other load shows in the figures: run it more than once.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.config import load_settings
from workers.contracts import (
    Document,
    Extraction,
    ExtractionOutcome,
    Feedback,
    Item,
    LabelOutcome,
    ModelInfo,
    Prediction,
    RagOutcome,
    RagVerdict,
    Rating,
    ResolutionStatus,
    RetrievedContext,
    ReviewResolution,
    TaskKind,
)
from workers.label_sink.store import TABLES, LabelStore, Table, mapped_of, rows_of
from workers.label_sink.worker import label_sink
from workers.runtime.worker import Origin, Processed
from workers.storage.migrations import migrate
from workers.storage.postgres import open_pool

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def source_event(kind: TaskKind, index: int) -> Prediction | Feedback | Extraction:
    if kind is TaskKind.MODERATION:
        return Prediction(
            event_id=uuid.uuid4(),
            occurred_at=T0,
            source="bench",
            task="moderation",
            model=ModelInfo(name="toxicity-bert", version="2.3.1"),
            item=Item(id=f"item-{index}", content_type="text/plain", text="x" * 400, metadata={"lang": "en"}),
            scores={"toxic": 0.61, "ok": 0.39},
        )
    if kind is TaskKind.RAG_ANSWER:
        return Feedback(
            event_id=uuid.uuid4(),
            occurred_at=T0,
            session_id=f"s-{index}",
            question="How do I reset my password?",
            answer="Open Settings, then Privacy.",
            contexts=(RetrievedContext(doc_id="kb-1", text="y" * 300, score=0.9),),
            rating=Rating.DOWN,
            model=ModelInfo(name="support-rag", version="2.1.0"),
        )
    return Extraction(
        event_id=uuid.uuid4(),
        occurred_at=T0,
        document=Document(id=f"doc-{index}", text="z" * 400),
        schema_name="invoice",
        schema_version="1",
        raw_output='{"total": "120.50 EUR"',
        model=ModelInfo(name="extractor", version="1"),
    )


OUTCOMES = {
    TaskKind.MODERATION: LabelOutcome(label="toxic"),
    TaskKind.RAG_ANSWER: RagOutcome(
        verdict=RagVerdict.INCORRECT, corrected_answer="Open Settings > Security."
    ),
    TaskKind.EXTRACTION: ExtractionOutcome(corrected_json='{"total": 120.5, "currency": "EUR"}'),
}


def resolutions(kind: TaskKind, count: int) -> list[Processed]:
    received = []
    for index in range(count):
        source = source_event(kind, index)
        resolution = ReviewResolution(
            task_id=source.event_id,
            kind=kind,
            outcome=OUTCOMES[kind],
            status=ResolutionStatus.SUBMITTED,
            reviewers=("ann", "bob"),
            agreement=1.0,
            resolved_at=T0 + timedelta(seconds=index),
            source=source,
        )
        received.append(Processed(resolution, Origin("hitl.review.resolved", index % 6, index, T0)))
    return received


@contextmanager
def fresh_schema(dsn: str) -> Iterator[str]:
    schema = f"bench_label_sink_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def batches(items: Sequence[Processed], size: int) -> list[Sequence[Processed]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


@dataclass
class SinkTimes:
    handler: float = 0.0
    sink: float = 0.0
    cold: float = 0.0
    replay: float = 0.0


def bench_sink(dsn: str, received: Sequence[Processed], batch: int) -> SinkTimes:
    times = SinkTimes()
    parts = batches(received, batch)
    with fresh_schema(dsn) as schema:
        spec = label_sink(load_settings(postgres_dsn=dsn), schema=schema)
        assert isinstance(spec.sink, LabelStore)
        worker_store: LabelStore = spec.sink
        try:
            worker_store.write(parts[0][:1])  # a warm connection and staging tables, as in a worker
            for part in parts:
                started = time.perf_counter()
                for item in part:
                    spec.handler(item.event, item.origin)
                handled = time.perf_counter()
                assert worker_store.write(part) == {}
                times.handler += handled - started
                times.sink += time.perf_counter() - handled
            times.replay = timed(lambda: [worker_store.write(part) for part in parts])
        finally:
            worker_store.close()
    with fresh_schema(dsn) as schema:
        store = LabelStore(open_pool(dsn, schema=schema, autocommit=True))
        try:
            store.write(parts[0][:1])
            times.cold = timed(lambda: [store.write(part) for part in parts])
        finally:
            store.close()
    return times


def bench_raw_copy(dsn: str, received: Sequence[Processed], batch: int) -> float:
    """Seconds to COPY the sink's rows (built beforehand) into their tables, batch by batch."""
    parts = []
    for start in range(0, len(received), batch):
        by_table: dict[Table, list[tuple[object, ...]]] = {}
        for item in received[start : start + batch]:
            for table, row in rows_of(mapped_of(item)).items():
                by_table.setdefault(table, []).append(row)
        parts.append(by_table)
    with fresh_schema(dsn) as schema, psycopg.connect(dsn, options=f"-c search_path={schema}") as conn:
        migrate(conn)
        conn.commit()

        def copy_all() -> None:
            for by_table in parts:
                with conn.transaction():
                    for table in TABLES:
                        if table in by_table:
                            columns = ", ".join(name for name, _ in table.columns)
                            with conn.cursor().copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                                for row in by_table[table]:
                                    copy.write_row(row)

        return timed(copy_all)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--kind", choices=[k.value for k in TaskKind], default=TaskKind.MODERATION.value)
    args = parser.parse_args()
    dsn = os.environ.get("HITL_POSTGRES_DSN", "postgresql://hitl:hitl@127.0.0.1:5432/hitl")
    received = resolutions(TaskKind(args.kind), args.examples)
    # A running worker holds one batch of events, not all of them: keep the collector from walking
    # the whole input at every full collection.
    gc.freeze()

    raw = bench_raw_copy(dsn, received, args.batch)
    sink = bench_sink(dsn, received, args.batch)
    count = args.examples
    print(f"{count} {args.kind} examples, batches of {args.batch}")
    print(f"raw COPY of the same rows        {count / raw:9,.0f} examples/s")
    for name, seconds in [("sink", sink.sink), ("sink, cold", sink.cold), ("sink, replay", sink.replay)]:
        print(f"{name:32} {count / seconds:9,.0f} examples/s   ratio to raw COPY {raw / seconds:5.2f}")
    print(f"(handler, mapping and building the TrainingExample: {sink.handler / count * 1e6:.1f} us/message)")


if __name__ == "__main__":
    main()
