"""The statistics against hand-computed examples and against their stated coverage."""

from __future__ import annotations

import math
import random

import pytest

from workers.quality.stats import (
    agreement_of,
    beta_cdf,
    clopper_pearson_upper,
    cohen_kappa,
    fleiss_kappa,
    majority_agreement,
    quantile,
    wilson_interval,
)


def test_cohen_kappa_of_the_textbook_example() -> None:
    # Two readers of 50 proposals: 20 both yes, 15 both no, 5 yes/no, 10 no/yes.
    # p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4.
    pairs = [("yes", "yes")] * 20 + [("no", "no")] * 15 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_cohen_kappa_by_hand_with_three_labels() -> None:
    # 10 items; agree on 7 (3 a, 2 b, 2 c); disagreements a/b, b/c, c/a.
    pairs = [("a", "a")] * 3 + [("b", "b")] * 2 + [("c", "c")] * 2 + [("a", "b"), ("b", "c"), ("c", "a")]
    # first: a 4, b 3, c 3; second: a 4, b 3, c 3; p_e = (16 + 9 + 9) / 100 = 0.34; p_o = 0.7.
    assert cohen_kappa(pairs) == pytest.approx((0.7 - 0.34) / (1 - 0.34))


def test_fleiss_kappa_of_the_textbook_example() -> None:
    # Fleiss (1971) as in the usual worked example: 10 items, 14 raters, 5 categories: kappa 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    items = [[category for category, count in enumerate(row) for _ in range(count)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_with_two_raters_by_hand() -> None:
    # 4 items, two ratings each: (x, x), (x, y), (y, y), (y, y).
    # P_i = 1, 0, 1, 1 -> P = 0.75; p_x = 3/8, p_y = 5/8 -> P_e = 34/64; kappa = (0.75 - P_e) / (1 - P_e).
    chance = 34 / 64
    assert fleiss_kappa([["x", "x"], ["x", "y"], ["y", "y"], ["y", "y"]]) == pytest.approx(
        (0.75 - chance) / (1 - chance)
    )


def test_perfect_agreement_on_one_category_has_no_kappa() -> None:
    assert cohen_kappa([("a", "a")] * 5) is None
    assert fleiss_kappa([["a", "a", "a"]] * 4) is None


def test_agreement_is_cohens_for_the_same_two_reviewers_and_fleiss_otherwise() -> None:
    two = {1: [("ana", "x"), ("bo", "x")], 2: [("bo", "y"), ("ana", "x")], 3: [("ana", "y"), ("bo", "y")]}
    cohen = agreement_of(two)
    assert cohen is not None and cohen.method == "cohen" and cohen.items == 3
    assert cohen.kappa == pytest.approx(cohen_kappa([("x", "x"), ("x", "y"), ("y", "y")]))
    many = {1: [("ana", "x"), ("bo", "x")], 2: [("chen", "y"), ("ana", "x"), ("bo", "y")], 3: [("bo", "y")]}
    fleiss = agreement_of(many)
    # Item 3 has one answer (left out); item 2 counts with its first two answers.
    assert fleiss is not None and fleiss.method == "fleiss" and fleiss.items == 2
    assert fleiss.kappa == pytest.approx(fleiss_kappa([["x", "x"], ["y", "x"]]))


def test_each_reviewers_agreement_with_the_majority() -> None:
    answers = {
        1: [("ana", "x"), ("bo", "x"), ("chen", "y")],
        2: [("ana", "y"), ("bo", "x"), ("chen", "y")],
        3: [("ana", "x"), ("bo", "y")],  # a tie: the first answer is the majority
    }
    found = {reviewer: interval.estimate for reviewer, interval in majority_agreement(answers).items()}
    assert found == {"ana": 1.0, "bo": pytest.approx(1 / 3), "chen": 0.5}


def test_clopper_pearson_against_closed_forms() -> None:
    # No errors in n: the bound is 1 - delta ** (1 / n); all errors: 1.
    for n in (1, 10, 250):
        assert clopper_pearson_upper(0, n, 0.05) == pytest.approx(1 - 0.05 ** (1 / n), abs=1e-9)
    assert clopper_pearson_upper(5, 5, 0.05) == 1.0
    # I_x(1, b) = 1 - (1 - x) ** b.
    assert beta_cdf(0.3, 1, 4) == pytest.approx(1 - 0.7**4)
    # The bound holds: P(X <= k | p = bound) = delta for a binomial X.
    k, n, delta = 3, 100, 0.05
    bound = clopper_pearson_upper(k, n, delta)
    tail = sum(math.comb(n, i) * bound**i * (1 - bound) ** (n - i) for i in range(k + 1))
    assert tail == pytest.approx(delta, abs=1e-6)


def test_quantiles_interpolate_like_percentile_cont() -> None:
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.99) == pytest.approx(4.96)
    assert quantile([], 0.5) is None


@pytest.mark.parametrize(("rate", "trials"), [(0.02, 400), (0.05, 100), (0.05, 1000), (0.2, 60)])
def test_the_wilson_interval_covers_the_truth_about_95_times_in_100(rate: float, trials: int) -> None:
    rng = random.Random(f"wilson:{rate}:{trials}")
    runs = 2000
    covered = 0
    for _ in range(runs):
        errors = sum(rng.random() < rate for _ in range(trials))
        interval = wilson_interval(errors, trials)
        assert interval is not None
        covered += interval.low <= rate <= interval.high
    # Wilson's coverage oscillates around its nominal 95 % with n and p.
    assert 0.92 <= covered / runs <= 0.98, covered / runs
