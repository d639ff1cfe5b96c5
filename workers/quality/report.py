"""The loop-quality figures (`hitl-workers report` and the quality-exporter), computed from a History.

Pure: the same history gives the same figures. `now` is when open tasks' ages are measured.

- Automatic error, per task, model version, label and outcome, from the audit sample only: the
  audit is drawn at random from the automatic decisions (a pure function of the event id), so the
  share of audited decisions the reviewers contradict is an unbiased estimate of the error of all
  of them. An auto-accepted label is wrong when the reviewers chose another; an auto-rejected one
  when they chose that very label. With fewer than MIN_AUDITS reviewed audits the figure is
  flagged as too few to tell. When the producer sent ground truth, the true error of every
  decision of the group is shown beside it.
- Review rate: grey-band tasks per routed prediction, audits per automatic decision.
- Backlog: tasks without a resolution, by kind, with the oldest one's age.
- Time to label: first resolution minus task creation, p50 and p99, by kind.
- Agreement: Cohen's or Fleiss' kappa, by kind and task (`stats.agreement_of`), and each
  reviewer's agreement with the majority.
- Grey band: how often the reviewers kept the model's suggested label.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from workers.quality.history import History
from workers.quality.stats import (
    Agreement,
    Interval,
    agreement_of,
    majority_agreement,
    quantile,
    wilson_interval,
)

MIN_AUDITS = 30
GREY_BAND = "grey_band"
AUDIT_SAMPLE = "audit_sample"
SUBMITTED = "submitted"


@dataclass(frozen=True)
class AutoError:
    task: str
    model: str
    version: str
    label: str
    outcome: str
    decisions: int
    audits: int
    reviewed_audits: int
    errors: int
    interval: Interval | None
    verdict: str
    true_error: float | None  # over every decision of the group with ground truth


@dataclass(frozen=True)
class ReviewRate:
    task: str
    model: str
    version: str
    routed: int
    grey_band: int
    decisions: int
    audits: int

    @property
    def grey_share(self) -> float | None:
        return self.grey_band / self.routed if self.routed else None

    @property
    def audit_share(self) -> float | None:
        return self.audits / self.decisions if self.decisions else None


@dataclass(frozen=True)
class Backlog:
    kind: str
    open: int
    oldest_age_seconds: float | None
    by_age: dict[str, int]


@dataclass(frozen=True)
class TimeToLabel:
    kind: str
    labelled: int
    p50_seconds: float | None
    p99_seconds: float | None


@dataclass(frozen=True)
class ReviewerAgreement:
    kind: str
    task: str
    agreement: Agreement | None
    reviewers: dict[str, Interval]


@dataclass(frozen=True)
class GreyAgreement:
    task: str
    model: str
    version: str
    label: str
    reviewed: int
    kept: int
    interval: Interval | None


@dataclass
class Report:
    auto_errors: list[AutoError] = field(default_factory=list)
    review_rates: list[ReviewRate] = field(default_factory=list)
    backlog: list[Backlog] = field(default_factory=list)
    time_to_label: list[TimeToLabel] = field(default_factory=list)
    agreement: list[ReviewerAgreement] = field(default_factory=list)
    grey_band: list[GreyAgreement] = field(default_factory=list)
    dead_letters: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        for rate, row in zip(self.review_rates, document["review_rates"], strict=True):
            row["grey_share"], row["audit_share"] = rate.grey_share, rate.audit_share
        return document


AGE_BUCKETS = ((3600.0, "under_1h"), (86400.0, "1h_to_24h"), (float("inf"), "over_24h"))


def verdict_of(reviewed: int, interval: Interval | None) -> str:
    if reviewed == 0:
        return "no audits: cannot tell"
    if reviewed < MIN_AUDITS or interval is None:
        return f"too few audits to tell (fewer than {MIN_AUDITS})"
    return "ok"


def build_report(
    history: History, now: datetime, dead_letters: Mapping[str, Mapping[str, int]] | None = None
) -> Report:
    report = Report(dead_letters={topic: dict(reasons) for topic, reasons in (dead_letters or {}).items()})
    tasks = history.task_by_id()
    _auto_errors(report, history, tasks)
    _review_rates(report, history)
    _backlog_and_latency(report, history, now)
    _agreement(report, history)
    _grey_band(report, history)
    return report


def _human_label(reviews: Mapping[UUID, Any], task_id: UUID) -> str | None:
    review = reviews.get(task_id)
    return review.answer if review is not None and review.status == SUBMITTED else None


def _auto_errors(report: Report, history: History, tasks: Mapping[UUID, Any]) -> None:
    groups: dict[tuple[str, str, str, str, str], list[Any]] = defaultdict(list)
    for decision in history.decisions:
        key = (decision.task, decision.model_name, decision.model_version, decision.label, decision.outcome)
        groups[key].append(decision)
    for key in sorted(groups):
        decisions = groups[key]
        accepted = key[4] == "auto_accepted"
        audits = reviewed = errors = 0
        truth_total = truth_errors = 0
        for decision in decisions:
            if decision.ground_truth is not None:
                truth_total += 1
                truth_errors += (
                    (decision.ground_truth != decision.label)
                    if accepted
                    else (decision.ground_truth == decision.label)
                )
            task = tasks.get(decision.event_id)
            if task is None or task.reason != AUDIT_SAMPLE:
                continue
            audits += 1
            human = _human_label(history.reviews, decision.event_id)
            if human is None:
                continue
            reviewed += 1
            errors += (human != decision.label) if accepted else (human == decision.label)
        interval = wilson_interval(errors, reviewed)
        report.auto_errors.append(
            AutoError(
                *key,
                decisions=len(decisions),
                audits=audits,
                reviewed_audits=reviewed,
                errors=errors,
                interval=interval,
                verdict=verdict_of(reviewed, interval),
                true_error=truth_errors / truth_total if truth_total else None,
            )
        )


def _review_rates(report: Report, history: History) -> None:
    counts: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for decision in history.decisions:
        counts[(decision.task, decision.model_name, decision.model_version)]["decisions"] += 1
    for task in history.tasks:
        if task.kind == "moderation" and task.reason in (GREY_BAND, AUDIT_SAMPLE):
            counts[(task.task, task.model_name, task.model_version)][task.reason] += 1
    for key in sorted(counts):
        c = counts[key]
        report.review_rates.append(
            ReviewRate(
                *key,
                routed=c["decisions"] + c[GREY_BAND],
                grey_band=c[GREY_BAND],
                decisions=c["decisions"],
                audits=c[AUDIT_SAMPLE],
            )
        )


def _backlog_and_latency(report: Report, history: History, now: datetime) -> None:
    open_ages: dict[str, list[float]] = defaultdict(list)
    latencies: dict[str, list[float]] = defaultdict(list)
    kinds = sorted({task.kind for task in history.tasks})
    for task in history.tasks:
        review = history.reviews.get(task.task_id)
        if review is None:
            open_ages[task.kind].append(max(0.0, (now - task.created_at).total_seconds()))
        else:
            latencies[task.kind].append(
                max(0.0, (review.first_resolved_at - task.created_at).total_seconds())
            )
    for kind in kinds:
        ages = open_ages[kind]
        buckets = Counter(next(name for limit, name in AGE_BUCKETS if age < limit) for age in ages)
        report.backlog.append(
            Backlog(
                kind, len(ages), max(ages) if ages else None, {name: buckets[name] for _, name in AGE_BUCKETS}
            )
        )
        times = latencies[kind]
        report.time_to_label.append(
            TimeToLabel(kind, len(times), quantile(times, 0.5), quantile(times, 0.99))
        )


def _agreement(report: Report, history: History) -> None:
    by_group: dict[tuple[str, str], dict[UUID, tuple[tuple[str, str], ...]]] = defaultdict(dict)
    for task in history.tasks:
        review = history.reviews.get(task.task_id)
        if review is not None and review.answers:
            by_group[(task.kind, task.task)][task.task_id] = review.answers
    for kind, task_name in sorted(by_group):
        answers = by_group[(kind, task_name)]
        report.agreement.append(
            ReviewerAgreement(kind, task_name, agreement_of(answers), majority_agreement(answers))
        )


def _grey_band(report: Report, history: History) -> None:
    counts: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for task in history.tasks:
        if task.reason != GREY_BAND or task.suggested_label is None:
            continue
        human = _human_label(history.reviews, task.task_id)
        if human is None:
            continue
        entry = counts[(task.task, task.model_name, task.model_version, task.suggested_label)]
        entry[0] += 1
        entry[1] += human == task.suggested_label
    for key in sorted(counts):
        reviewed, kept = counts[key]
        report.grey_band.append(GreyAgreement(*key, reviewed, kept, wilson_interval(kept, reviewed)))
