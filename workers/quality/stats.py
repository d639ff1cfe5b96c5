"""The statistics the quality figures rest on, in plain Python: intervals, bounds, kappas, quantiles.

- Wilson's score interval for a proportion (report): good coverage even for few trials and
  proportions near 0, where the normal approximation fails.
- The Clopper-Pearson (exact binomial) upper bound (calibration): the beta quantile, computed
  from the regularized incomplete beta function by bisection; it accepts non-integer counts,
  which the weighted (effective-sample-size) estimates of `calibration` need.
- Cohen's kappa (two raters who rated the same items) and Fleiss' kappa (a fixed number of
  ratings per item, raters may differ between items).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> Interval | None:
    """Wilson's score interval (95 % by default); None without trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < eps:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The x with I_x(a, b) = q, by bisection (to about 1e-12)."""
    low, high = 0.0, 1.0
    for _ in range(100):
        middle = (low + high) / 2
        if beta_cdf(middle, a, b) < q:
            low = middle
        else:
            high = middle
        if high - low < 1e-13:
            break
    return (low + high) / 2


def clopper_pearson_upper(errors: float, trials: float, delta: float) -> float:
    """The one-sided upper bound on an error rate that holds with probability >= 1 - delta."""
    if trials <= 0:
        return 1.0
    if errors >= trials:
        return 1.0
    return beta_quantile(1 - delta, errors + 1, trials - errors)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile by linear interpolation (PostgreSQL's percentile_cont); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@dataclass(frozen=True)
class Agreement:
    method: str  # "cohen" or "fleiss"
    kappa: float | None  # None when chance agreement is 1 (every rating the same category)
    items: int
    raters: int


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters' answers to the same items, (first's, second's) per item."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(first[c] * second[c] for c in first) / (n * n)
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)


def fleiss_kappa(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa of items that each have the same number (>= 2) of ratings."""
    if not items:
        return None
    n = len(items[0])
    if n < 2 or any(len(ratings) != n for ratings in items):
        raise ValueError("Fleiss' kappa needs the same number (at least 2) of ratings per item")
    totals: Counter[Hashable] = Counter()
    agreement = 0.0
    for ratings in items:
        counts = Counter(ratings)
        totals.update(counts)
        agreement += (sum(c * c for c in counts.values()) - n) / (n * (n - 1))
    observed = agreement / len(items)
    chance = sum((count / (len(items) * n)) ** 2 for count in totals.values())
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)


def agreement_of(answers_by_item: Mapping[Any, Sequence[tuple[str, Hashable]]]) -> Agreement | None:
    """Cohen's kappa when the same two reviewers answered every item, else Fleiss' kappa.

    Every item with at least two answers counts, with its first n answers, n the fewest any of
    them has: answers added later, to settle a disagreement, would make agreement look lower
    than it is if counted, and leaving out the items that needed them would make it look higher.
    """
    answered = {item: answers for item, answers in answers_by_item.items() if len(answers) >= 2}
    if not answered:
        return None
    fewest = min(len(answers) for answers in answered.values())
    rated = {item: answers[:fewest] for item, answers in answered.items()}
    reviewers = {reviewer for answers in rated.values() for reviewer, _ in answers}
    if len(reviewers) == 2 and all(len(answers) == 2 for answers in rated.values()):
        first, second = sorted(reviewers)
        pairs = []
        for answers in rated.values():
            by_reviewer = dict(answers)
            if first in by_reviewer and second in by_reviewer:
                pairs.append((by_reviewer[first], by_reviewer[second]))
        return Agreement("cohen", cohen_kappa(pairs), len(pairs), 2)
    chosen = [[answer for _, answer in answers] for answers in rated.values()]
    return Agreement("fleiss", fleiss_kappa(chosen), len(chosen), len(reviewers))


def majority_agreement(
    answers_by_item: Mapping[Any, Sequence[tuple[str, Hashable]]],
) -> dict[str, Interval]:
    """Per reviewer: the share of their answers (on items with >= 2 answers) equal to the item's
    majority answer (the first given, on a tie, as the resolution takes it)."""
    agreed: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    for answers in answers_by_item.values():
        if len(answers) < 2:
            continue
        counts = Counter(answer for _, answer in answers)
        best = max(counts.values())
        majority = next(answer for _, answer in answers if counts[answer] == best)
        for reviewer, answer in answers:
            answered[reviewer] += 1
            agreed[reviewer] += answer == majority
    return {
        reviewer: interval
        for reviewer in sorted(answered)
        if (interval := wilson_interval(agreed[reviewer], answered[reviewer])) is not None
    }
