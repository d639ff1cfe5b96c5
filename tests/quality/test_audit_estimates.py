"""The automatic side's error, estimated from the audit sample stored in PostgreSQL, against a
stream whose error rate is known: the 95 % interval covers it about 95 times in 100."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import pytest

from tests.quality.conftest import START, Loader, prediction
from workers.quality.history import History
from workers.quality.report import MIN_AUDITS, build_report

POLICY = """
version = "test"
[default]
low = 0.2
high = 0.8
audit_rate = 0.3
"""
# Every prediction is decided (no score in the grey band); the accepted label is wrong with these
# probabilities, whatever the score.
TRUE_ERROR = {"toxic": 0.06, "ok": 0.03}
SEEDS = 100
PER_SEED = 500


def decided_stream(task: str, seed: int) -> list:
    rng = random.Random(f"stream:{seed}")
    predictions = []
    for index in range(PER_SEED):
        accepted = "toxic" if rng.random() < 0.5 else "ok"
        wrong = rng.random() < TRUE_ERROR[accepted]
        other = "ok" if accepted == "toxic" else "toxic"
        toxic = rng.uniform(0.8, 1.0) if accepted == "toxic" else rng.uniform(0.0, 0.2)
        predictions.append(prediction(task, index, toxic, other if wrong else accepted, index * 0.5))
    return predictions


@pytest.mark.postgres
def test_the_audit_interval_covers_the_known_error_rate_at_about_its_level(
    load: Loader, read: Callable[..., History]
) -> None:
    predictions = [p for seed in range(SEEDS) for p in decided_stream(f"seed-{seed}", seed)]
    load(predictions, POLICY)
    report = build_report(read(), START + timedelta(days=1))

    groups = [e for e in report.auto_errors if e.outcome == "auto_accepted"]
    assert len(groups) == 2 * SEEDS
    covered = 0
    for group in groups:
        assert group.interval is not None
        assert group.reviewed_audits >= MIN_AUDITS and group.verdict == "ok"
        # The audit is about 30 % of the decisions (drawn from the event id); the latest are not
        # all answered yet when the history ends.
        assert 0.2 < group.audits / group.decisions < 0.4
        covered += group.interval.low <= TRUE_ERROR[group.label] <= group.interval.high
    coverage = covered / len(groups)
    print(f"95% Wilson intervals covering the true error: {covered}/{len(groups)} = {coverage:.3f}")
    # 200 intervals: a binomial(200, 0.95) count is above 0.9 * 200 with probability > 0.999.
    assert 0.90 <= coverage <= 0.99


@pytest.mark.postgres
def test_too_few_audits_are_said_to_be_too_few(load: Loader, read: Callable[..., History]) -> None:
    load(decided_stream("small", 7)[:40], POLICY)
    report = build_report(read(), START + timedelta(days=1))
    verdicts = {e.label: e for e in report.auto_errors}
    assert all(e.reviewed_audits < MIN_AUDITS for e in verdicts.values())
    assert all(e.verdict.startswith(("too few audits", "no audits")) for e in verdicts.values())
