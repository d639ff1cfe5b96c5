"""CPU per message of each worker's own work, on the reference codec path and on the fast path.

    .venv/bin/python bench/worker_cost.py [--repeats 5]

For the band-router, feedback-triage, extraction-validator and label-sink-decisions, times what
the runtime does for one message besides Kafka (`batch.BatchHandler`: decode, the worker's
handler, encode each output) on the bundled samples (`samples/*.jsonl`, JSON in; decisions for the
label-sink, Avro in), first with `EventCodec(fast=False)` (the reference path: Pydantic,
`to_avro_datum`, fastavro), then with the fast codec (the worker's fast path where it has one:
the band-router's, as `band_router.worker` builds it, feedback-triage's, the extraction-validator's
and label-sink-decisions'), once with the
Python Avro writer (what an install without a C compiler runs) and once with the compiled one
(the default). No broker, no sink: the worker's sink (PostgreSQL) is left out. Best of
`--repeats`, process CPU time. Prints µs per message for each, and the ratio to a bare copy loop
that an `--bare-us` µs/msg Kafka cost implies (the peer benchmark's bare loop measures it), an
estimate, not a measurement.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from confluent_kafka import Message  # noqa: E402

from tests.support.messages import StoredMessage  # noqa: E402
from workers.band_router.policy import load_policy  # noqa: E402
from workers.band_router.reload import PolicyHolder  # noqa: E402
from workers.band_router.routing import route  # noqa: E402
from workers.band_router.worker import band_router as band_router_spec  # noqa: E402
from workers.config import load_settings  # noqa: E402
from workers.contracts import Decision, EventCodec, Feedback, Prediction  # noqa: E402
from workers.contracts.plain import PlainDecision, PlainFeedback  # noqa: E402
from workers.extraction_validator.worker import extraction_validator  # noqa: E402
from workers.feedback_triage.triage import triage, triage_plain  # noqa: E402
from workers.label_sink.worker import handle_decision, handle_plain_decision  # noqa: E402
from workers.runtime.batch import BatchHandler  # noqa: E402
from workers.runtime.worker import FastPath, Origin, WorkerSpec  # noqa: E402

SAMPLES = REPO / "samples"
POLICY_FILE = REPO / "deploy" / "policies" / "bands.toml"
POLICY = load_policy(POLICY_FILE)
JSON = [("content-type", b"application/json")]
AVRO = [("content-type", b"avro/binary")]


def lines(name: str, repeat_to: int = 2000) -> list[bytes]:
    found = [line.encode() for line in (SAMPLES / name).read_text().splitlines() if line.strip()]
    return [found[i % len(found)] for i in range(max(repeat_to, len(found)))]


def specs() -> list[tuple[str, WorkerSpec, list[StoredMessage]]]:
    settings = load_settings()

    def band_router(prediction: Prediction, _origin: Origin) -> Any:
        return route(prediction, POLICY, datetime.now(UTC))

    rate = settings.feedback_triage.positive_sample_rate

    def feedback(item: Feedback, _origin: Origin) -> Any:
        return triage(item, rate, datetime.now(UTC))

    def feedback_plain(item: PlainFeedback) -> Any:
        return triage_plain(item, rate, datetime.now(UTC))

    reference = EventCodec(fast=False)
    predictions = [reference.decode(v, JSON, Prediction) for v in lines("predictions.jsonl")]
    decisions = [o for p in predictions for o in band_router(p, None) if isinstance(o, Decision)]  # type: ignore[arg-type]
    return [
        (
            "band-router",
            band_router_spec(settings, PolicyHolder(POLICY_FILE, check_seconds=3600)),
            [StoredMessage(v, JSON) for v in lines("predictions.jsonl")],
        ),
        (
            "feedback-triage",
            WorkerSpec(
                "feedback-triage",
                "in",
                (Feedback,),
                feedback,
                {_task(): "t"},
                fast_path=FastPath(PlainFeedback, feedback_plain),
            ),
            [StoredMessage(v, JSON) for v in lines("feedback.jsonl")],
        ),
        (
            "extraction-validator",
            extraction_validator(settings),
            [StoredMessage(v, JSON) for v in lines("extractions.jsonl")],
        ),
        (
            "label-sink-decisions",
            WorkerSpec(
                "label-sink-decisions",
                "in",
                (Decision,),
                handle_decision,
                {_example(): "x"},
                fast_path=FastPath(PlainDecision, handle_plain_decision, needs_origin=True),
            ),
            [StoredMessage(reference.encode(d), AVRO) for d in decisions[:2000]],
        ),
    ]


def _task() -> type:
    from workers.contracts import ReviewTask

    return ReviewTask


def _example() -> type:
    from workers.contracts import TrainingExample

    return TrainingExample


def best_us(step: Callable[[], object], count: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        step()
        best = min(best, time.process_time() - started)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bare-us", type=float, default=7.7, help="the bare loop's CPU µs/msg")
    args = parser.parse_args()
    bare = args.bare_us
    print(
        "| worker | reference µs/msg | fast, Python writer | fast, compiled writer "
        f"| est. ÷ bare: reference | Python writer | compiled (bare {bare} µs) |"
    )
    print("|---|---|---|---|---|---|---|")
    codecs = (EventCodec(fast=False), EventCodec(compiled_writer=False), EventCodec(compiled_writer=True))
    for name, spec, messages in specs():
        costs = []
        for codec in codecs:
            handler = BatchHandler(spec, codec, 1_000_000)
            results = [handler(m) for m in messages]  # type: ignore[arg-type]
            rejected = sum(r.rejection is not None for r in results)
            assert rejected < len(results), f"{name}: every sample rejected: {results[0].rejection}"

            def step(h: BatchHandler = handler, batch: list[StoredMessage] = messages) -> object:
                return [h(m) for m in batch]  # type: ignore[arg-type]

            costs.append(best_us(step, len(messages), args.repeats))
        ratios = " | ".join(f"{bare / (bare + cost):.2f}" for cost in costs)
        print(f"| {name} | {' | '.join(f'{cost:.1f}' for cost in costs)} | {ratios} |")


if __name__ == "__main__":
    _ = Message
    main()
