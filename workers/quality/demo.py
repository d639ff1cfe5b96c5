"""`make quality-demo`: a long labelled history through the band-router and simulated reviewers,
then `report` and `calibrate` on it, where the truth is known.

Twenty thousand predictions through Argilla's reviewers would take hours, so this loads the
history straight into the quality tables, through the same code the pipeline runs: each
prediction is routed by the band-router's `route` under the demo's policy (`DEMO_POLICY`, audit
rate 0.2), and each review task gets a resolution from simulated reviewers (each right with a
probability of their own, two per task and a third when they disagree, answering after a
log-normal delay), built as the collector builds it; the rows are the recorders' rows
(`recording`). Tasks whose answer would come after the history's end stay open: the backlog.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from workers.band_router.policy import parse_policy
from workers.band_router.routing import route
from workers.cli import main as cli_main
from workers.config import load_settings
from workers.contracts import (
    Decision,
    LabelOutcome,
    Prediction,
    ResolutionStatus,
    ReviewerAnswer,
    ReviewResolution,
    ReviewTask,
)
from workers.quality.history import connect
from workers.quality.recording import QualityRows, decision_rows, resolution_rows, task_rows
from workers.quality.store import write_rows

DEMO_POLICY = """\
# The quality demo's policy: the packaged example's moderation band, with a fifth of the
# automatic decisions audited so that their error can be measured within days.
version = "quality-demo.1"

[tasks.moderation]
low = 0.4
high = 0.8
audit_rate = 0.2
"""

# Reviewer id and the probability that their answer is the truth.
REVIEWERS = (("ana", 0.99), ("bo", 0.985), ("chen", 0.98), ("dee", 0.95))
MEDIAN_DELAY_MINUTES = 25.0


def reviewers_answer(event_id: str, truth: str, labels: list[str]) -> list[tuple[str, str]]:
    """Two reviewers; when they disagree, a third settles it (as a task distribution of two,
    raised to three on disagreement, does)."""
    rng = random.Random(f"reviewers:{event_id}")
    chosen = rng.sample(REVIEWERS, 3)
    wrong = [label for label in labels if label != truth]

    def answer(accuracy: float) -> str:
        return truth if rng.random() < accuracy or not wrong else rng.choice(wrong)

    answers = [(reviewer, answer(accuracy)) for reviewer, accuracy in chosen[:2]]
    if answers[0][1] != answers[1][1]:
        answers.append((chosen[2][0], answer(chosen[2][1])))
    return answers


def majority(answers: list[tuple[str, str]]) -> tuple[str, float]:
    counts = Counter(answer for _, answer in answers)
    best = max(counts.values())
    return next(answer for _, answer in answers if counts[answer] == best), best / len(answers)


Reviewers = Callable[[ReviewTask], list[tuple[str, str]]]
"""A task's answers, (reviewer, label) in the order given."""


def simulated_reviewers(task: ReviewTask) -> list[tuple[str, str]]:
    source = task.source
    assert isinstance(source, Prediction)
    return reviewers_answer(str(task.task_id), source.ground_truth or "ok", sorted(source.scores))


def history_rows(
    predictions: list[Prediction], policy_text: str, reviewers: Reviewers = simulated_reviewers
) -> list[QualityRows]:
    """The rows the recorders would write for this history routed and reviewed."""
    policy = parse_policy(policy_text.encode(), "quality demo policy")
    end = max(p.occurred_at for p in predictions)
    rows: list[QualityRows] = []
    for prediction in predictions:
        routed_at = prediction.occurred_at + timedelta(seconds=1)
        for output in route(prediction, policy, routed_at):
            if isinstance(output, Decision):
                rows.append(decision_rows(output))
                continue
            assert isinstance(output, ReviewTask)
            rows.append(task_rows(output))
            resolution = simulated_resolution(output, end, reviewers)
            if resolution is not None:
                rows.append(resolution_rows(resolution))
    return rows


def simulated_resolution(task: ReviewTask, end: datetime, reviewers: Reviewers) -> ReviewResolution | None:
    rng = random.Random(f"delay:{task.task_id}")
    delay = timedelta(minutes=MEDIAN_DELAY_MINUTES * rng.lognormvariate(0, 1.1))
    resolved_at = task.created_at + delay
    if resolved_at > end:
        return None
    answers = reviewers(task)
    label, agreement = majority(answers)
    return ReviewResolution(
        task_id=task.task_id,
        kind=task.kind,
        outcome=LabelOutcome(label=label),
        status=ResolutionStatus.SUBMITTED,
        reviewers=tuple(reviewer for reviewer, _ in answers),
        agreement=round(agreement, 6),
        resolved_at=resolved_at,
        source=task.source,
        answers=tuple(ReviewerAnswer(reviewer=reviewer, answer=answer) for reviewer, answer in answers),
    )


def read_predictions(path: Path) -> list[Prediction]:
    with path.open(encoding="utf-8") as lines:
        return [Prediction.model_validate(json.loads(line)) for line in lines if line.strip()]


def load(conn: Any, rows: list[QualityRows]) -> None:
    with conn.transaction():
        write_rows(conn, rows)


def say(line: str) -> None:
    print(line, flush=True)


def reset_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.quality.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "history", type=Path, help="predictions with ground truth (samples/generate.py --history)"
    )
    parser.add_argument("--schema", default="quality_demo", help="PostgreSQL schema, emptied first")
    parser.add_argument("--output-dir", type=Path, default=Path(".stack/quality"))
    parser.add_argument("--target-error", type=float, default=0.02)
    parser.add_argument("--review-budget", type=float, default=30.0)
    args = parser.parse_args(argv)
    settings = load_settings()
    dsn = settings.postgres_dsn.get_secret_value()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    policy_file = args.output_dir / "bands.toml"
    policy_file.write_text(DEMO_POLICY, encoding="utf-8")

    predictions = read_predictions(args.history)
    say(f"routing {len(predictions)} predictions under {policy_file} and simulating the reviewers ...")
    rows = history_rows(predictions, DEMO_POLICY)
    reset_schema(dsn, args.schema)
    with connect(dsn, args.schema) as conn:
        load(conn, rows)
    counts = Counter(table for row in rows for table, values in row.rows.items() for _ in values)
    say(
        "loaded into schema "
        + args.schema
        + ": "
        + ", ".join(f"{n} {table}" for table, n in sorted(counts.items()))
    )
    # The history's last moment is "now" for the backlog's ages.
    until = (max(p.occurred_at for p in predictions) + timedelta(seconds=2)).isoformat()
    common = ["--schema", args.schema, "--policy", str(policy_file)]
    steps = [
        ["report", "--until", until, "--plot", str(args.output_dir / "report.png"), *common],
        [
            "calibrate",
            "--task",
            "moderation",
            "--target-error",
            str(args.target_error),
            "--plot",
            str(args.output_dir / "calibrate-target.png"),
            *common,
        ],
        [
            "calibrate",
            "--task",
            "moderation",
            "--review-budget",
            str(args.review_budget),
            "--plot",
            str(args.output_dir / "calibrate-budget.png"),
            *common,
        ],
    ]
    for step in steps:
        say("\n$ hitl-workers " + " ".join(step) + "\n")
        code = cli_main(step)
        sys.stdout.flush()
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
