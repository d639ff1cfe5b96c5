"""Calibration on one half of a history with known truth, checked on the other half: the bands
SGR recommends for a target error keep the automatic error under it, and the bands for a review
budget keep the review volume within it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.quality.conftest import Loader, overconfident_history
from workers.band_router.policy import Policy, parse_policy
from workers.band_router.routing import route
from workers.contracts import Decision, DecisionOutcome, Prediction
from workers.quality.calibration import Scope, calibrate_budget, calibrate_target, routed_history
from workers.quality.demo import simulated_reviewers
from workers.quality.history import History, Window

POLICY = """version = "test"

[default]
low = 0.4
high = 0.8
audit_rate = 0.2
"""
SEEDS = (1, 2, 3, 4, 5)
COUNT = 20_000  # over 240 hours: the first half calibrates, the second checks
TARGET = 0.02


def held_out(predictions: list[Prediction], policy: Policy) -> tuple[float, float, float]:
    """(true error of the automatic decisions, share decided, review tasks per prediction)."""
    wrong = decided = reviewed = 0.0
    now = datetime.now(UTC)
    for prediction in predictions:
        outputs = route(prediction, policy, now)
        decision = next((o for o in outputs if isinstance(o, Decision)), None)
        reviewed += len(outputs) - (decision is not None)
        if decision is None:
            continue
        decided += 1
        accepted = decision.outcome is DecisionOutcome.AUTO_ACCEPTED
        wrong += (
            (prediction.ground_truth != decision.label)
            if accepted
            else (prediction.ground_truth == decision.label)
        )
    return wrong / max(1, decided), decided / len(predictions), reviewed / len(predictions)


def halves(task: str, seed: int) -> tuple[list[Prediction], list[Prediction]]:
    predictions = overconfident_history(task, COUNT, seed, hours=240)
    return predictions[: COUNT // 2], predictions[COUNT // 2 :]


@pytest.mark.postgres
def test_sgr_bands_keep_the_held_out_error_under_the_target(
    load: Loader, read: Callable[..., History]
) -> None:
    current = parse_policy(POLICY.encode())
    results = []
    for seed in SEEDS:
        task = f"calibration-{seed}"
        train, test = halves(task, seed)
        load(train, POLICY, simulated_reviewers)
        routed = routed_history(read(Window(task=task)), task)
        calibration = calibrate_target(routed, current, POLICY, task, ["ok", "toxic"], TARGET, 0.95, Scope())
        proposed = parse_policy(calibration.policy_text.encode())
        before, _, _ = held_out(test, current)
        error, coverage, _ = held_out(test, proposed)
        results.append((seed, before, error, coverage))
        assert calibration.replay is not None and calibration.replay.error_bound_proposed is not None
        assert calibration.replay.error_bound_proposed <= TARGET
    for seed, before, error, coverage in results:
        print(
            f"seed {seed}: held-out error {before:.4f} under the current bands, {error:.4f} under SGR's, "
            f"decided automatically {coverage:.3f}"
        )
    assert all(before > TARGET for _, before, _, _ in results), "the current bands must miss the target"
    assert all(error <= TARGET for _, _, error, _ in results)
    # SGR is conservative (an exact bound, split over ceil(log2 m) thresholds), yet still decides
    # a good share of the stream.
    assert all(coverage >= 0.25 for _, _, _, coverage in results), "the bands decide too little"


@pytest.mark.postgres
def test_budget_bands_keep_the_held_out_review_volume_within_the_budget(
    load: Loader, read: Callable[..., History]
) -> None:
    current = parse_policy(POLICY.encode())
    for seed in SEEDS[:3]:
        task = f"budget-{seed}"
        train, test = halves(task, seed)
        load(train, POLICY, simulated_reviewers)
        routed = routed_history(read(Window(task=task)), task)
        rate = len(test) / 120.0  # predictions per hour in the held-out half
        budget = 30.0
        calibration = calibrate_budget(routed, current, POLICY, task, ["ok", "toxic"], budget, Scope())
        assert calibration.replay is not None
        assert calibration.replay.review_per_hour_proposed <= budget * 1.001
        _, _, review_share = held_out(test, parse_policy(calibration.policy_text.encode()))
        volume = review_share * rate
        print(f"seed {seed}: held-out review volume {volume:.1f} per hour for a budget of {budget}")
        assert review_share * rate <= budget * 1.1
        _, _, current_share = held_out(test, current)
        assert current_share * rate < budget, "the budget is above today's volume: the bands widen"
