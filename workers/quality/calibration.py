"""Where a label's band should be (`hitl-workers calibrate`), from the human-labelled history.

The labelled history of a task is its reviewed predictions: every grey-band task (the grey band is
reviewed whole) and the audit sample of the automatic decisions (drawn at random at the audit
rate). Neither alone is a random sample of the stream: each labelled prediction is weighted by the
inverse of its chance of being labelled (1 in the grey band; decisions / audits of its model
version and label on the automatic side), which makes weighted error rates estimates for the
whole stream. Bounds use Kish's effective sample size (sum w)^2 / sum w^2 of the selected
predictions, so heavily weighted audits count for what they are worth.

For a target error E at confidence 1 - delta, each side of each label is the SGR of Geifman and
El-Yaniv (2017): the labelled scores sorted, a binary search of ceil(log2 m) steps over them for
the lowest threshold whose Clopper-Pearson upper bound on the selective error, at
delta / ceil(log2 m) (a union bound over the thresholds tried), is at most E:

- accept side: `high` is the lowest score at or above which accepting the label (as the top
  label) errs at most E (an error: the reviewers chose another label);
- reject side: `low` is the highest score at or below which rejecting the label errs at most E
  (an error: the reviewers chose that label).

For a review budget B per hour, the bands follow one risk level r for every label (each side at
the threshold whose weighted error estimate is r): the lowest r whose expected review volume,
at the recent arrival rate, fits B; the error those bands leave is reported.

Every proposal is replayed: each routed prediction of the history goes through the band-router's
own `route` under the current and the proposed policy.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from workers.band_router.policy import Policy, parse_policy
from workers.band_router.routing import route
from workers.contracts import Band, Decision, DecisionOutcome, Item, ModelInfo, Prediction, ReviewTask
from workers.errors import ConfigError
from workers.quality.history import History, TaskRow
from workers.quality.stats import clopper_pearson_upper

GREY_BAND, AUDIT_SAMPLE, SUBMITTED = "grey_band", "audit_sample", "submitted"


@dataclass(frozen=True)
class Routed:
    """A routed prediction of the history, labelled or not."""

    event_id: UUID
    task: str
    model: ModelInfo
    scores: dict[str, float]
    at: datetime
    route: str  # auto_accepted, auto_rejected, grey_band
    human: str | None
    weight: float  # 1 / the chance of being labelled; 0 when not labelled
    ground_truth: str | None

    @property
    def top(self) -> str:
        return min(self.scores, key=lambda label: (-self.scores[label], label))


def routed_history(
    history: History, task: str, model: str | None = None, version: str | None = None
) -> list[Routed]:
    """The task's routed predictions, each with its human label and inverse-probability weight.

    The weight of a labelled prediction is the number of predictions of its stratum over the
    number labelled: decisions over answered audits, per model version and decided label, on the
    automatic side; grey-band tasks over answered ones, per model version, in the grey band (all
    of it is reviewed; the part not answered yet is the backlog).
    """
    reviews = history.reviews
    tasks = history.task_by_id()

    def human(event_id: UUID) -> str | None:
        review = reviews.get(event_id)
        return review.answer if review is not None and review.status == SUBMITTED else None

    population, labelled = _strata(history, tasks, human)

    def weight(stratum: tuple[str, ...], label: str | None) -> float:
        return population[stratum] / labelled[stratum] if label is not None and labelled[stratum] else 0.0

    def wanted(task_name: str, model_name: str, model_version: str) -> bool:
        return task_name == task and model in (None, model_name) and version in (None, model_version)

    routed: list[Routed] = []
    for decision in history.decisions:
        if not wanted(decision.task, decision.model_name, decision.model_version):
            continue
        label = human(decision.event_id) if decision.event_id in tasks else None
        stratum = ("auto", decision.model_name, decision.model_version, decision.label)
        routed.append(
            Routed(
                decision.event_id,
                decision.task,
                ModelInfo(name=decision.model_name, version=decision.model_version),
                decision.scores,
                decision.decided_at,
                decision.outcome,
                label,
                weight(stratum, label),
                decision.ground_truth,
            )
        )
    for grey in history.tasks:
        if (
            grey.reason != GREY_BAND
            or grey.scores is None
            or not wanted(grey.task, grey.model_name, grey.model_version)
        ):
            continue
        label = human(grey.task_id)
        routed.append(
            Routed(
                grey.task_id,
                grey.task,
                ModelInfo(name=grey.model_name, version=grey.model_version),
                grey.scores,
                grey.created_at,
                GREY_BAND,
                label,
                weight(("grey", grey.model_name, grey.model_version), label),
                grey.ground_truth,
            )
        )
    return routed


def _strata(
    history: History, tasks: Mapping[UUID, TaskRow], human: Callable[[UUID], str | None]
) -> tuple[Counter[tuple[str, ...]], Counter[tuple[str, ...]]]:
    """(predictions, labelled predictions) per sampling stratum."""
    population: Counter[tuple[str, ...]] = Counter()
    labelled: Counter[tuple[str, ...]] = Counter()
    stratum: tuple[str, ...]
    for decision in history.decisions:
        stratum = ("auto", decision.model_name, decision.model_version, decision.label)
        population[stratum] += 1
        found = tasks.get(decision.event_id)
        if found is not None and found.reason == AUDIT_SAMPLE and human(decision.event_id) is not None:
            labelled[stratum] += 1
    for found in history.tasks:
        if found.reason == GREY_BAND:
            stratum = ("grey", found.model_name, found.model_version)
            population[stratum] += 1
            labelled[stratum] += human(found.task_id) is not None
    return population, labelled


# -- selective risk --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    threshold: float
    risk: float  # weighted estimate
    bound: float  # Clopper-Pearson upper bound (at the union-bound level, for SGR)
    effective_n: float
    coverage: float  # share of the task's predictions this side decides automatically


@dataclass(frozen=True)
class Side:
    """One side of a label: which predictions it decides at a threshold, and when it errs."""

    label: str
    accept: bool

    def score(self, item: Routed) -> float:
        return item.scores.get(self.label, 0.0)

    def eligible(self, item: Routed) -> bool:
        # The router decides a label's acceptance only when it is the top label.
        return item.top == self.label if self.accept else True

    def selected(self, item: Routed, threshold: float) -> bool:
        score = self.score(item)
        return self.eligible(item) and (score >= threshold if self.accept else score <= threshold)

    def wrong(self, item: Routed) -> bool:
        return (item.human != self.label) if self.accept else (item.human == self.label)


@dataclass(frozen=True)
class Curve:
    """A side's selective error at each labelled score, from the most restrictive threshold to the
    most permissive: the predictions selected at each are those of the one before and more."""

    side: Side
    thresholds: list[float]
    risks: list[float]
    sizes: list[float]  # Kish's effective sample size
    errors: list[float]  # weighted errors, scaled to the effective size
    coverages: list[float]

    def point(self, index: int, delta: float) -> Point:
        bound = clopper_pearson_upper(self.errors[index], self.sizes[index], delta)
        return Point(
            self.thresholds[index], self.risks[index], bound, self.sizes[index], self.coverages[index]
        )


def curve(labelled: Sequence[Routed], everything: Sequence[Routed], side: Side) -> Curve:
    eligible = sorted((item for item in labelled if side.eligible(item)), key=side.score, reverse=side.accept)
    population = sorted(side.score(item) for item in everything if side.eligible(item))
    thresholds, risks, sizes, errors, coverages = [], [], [], [], []
    total = squares = wrong = 0.0
    for index, item in enumerate(eligible):
        total += item.weight
        squares += item.weight * item.weight
        wrong += item.weight * side.wrong(item)
        score = side.score(item)
        if index + 1 < len(eligible) and side.score(eligible[index + 1]) == score:
            continue  # a threshold selects every prediction with its score
        size = total * total / squares
        thresholds.append(score)
        risks.append(wrong / total)
        sizes.append(size)
        errors.append(wrong / total * size)
        if side.accept:
            decided = len(population) - bisect.bisect_left(population, score)
        else:
            decided = bisect.bisect_right(population, score)
        coverages.append(decided / max(1, len(everything)))
    return Curve(side, thresholds, risks, sizes, errors, coverages)


def sgr(
    labelled: Sequence[Routed], everything: Sequence[Routed], side: Side, target: float, delta: float
) -> Point | None:
    """Selection with guaranteed risk: the most permissive threshold whose bound is <= target."""
    found = curve(labelled, everything, side)
    m = len(found.thresholds)
    if m == 0:
        return None
    steps = max(1, math.ceil(math.log2(m)))
    level = delta / steps
    low, high, best = 0, m - 1, None
    for _ in range(steps):
        if low > high:
            break
        middle = (low + high + 1) // 2
        point = found.point(middle, level)
        if point.bound <= target:
            best, low = point, middle + 1
        else:
            high = middle - 1
    return best


def threshold_at_risk(found: Curve, risk_level: float) -> float:
    """The most permissive threshold whose weighted error estimate is at most `risk_level`."""
    for index in range(len(found.thresholds) - 1, -1, -1):
        if found.risks[index] <= risk_level:
            return found.thresholds[index]
    return 1.0 if found.side.accept else 0.0


# -- proposals -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelProposal:
    label: str
    current: Band
    proposed: Band
    accept: Point | None
    reject: Point | None
    note: str = ""


@dataclass(frozen=True)
class Replay:
    """The history routed under the current and the proposed policy."""

    predictions: int
    changes: dict[str, int]  # "grey_band -> auto_accepted": count
    hours: float
    arrival_per_hour: float
    review_share_current: float
    review_share_proposed: float
    review_per_hour_current: float
    review_per_hour_proposed: float
    error_current: float | None
    error_proposed: float | None
    error_bound_proposed: float | None
    true_error_current: float | None
    true_error_proposed: float | None
    auto_share_current: float
    auto_share_proposed: float


@dataclass
class Calibration:
    task: str
    mode: str
    target_error: float | None
    confidence: float | None
    budget_per_hour: float | None
    labelled: int
    predictions: int
    labels: list[LabelProposal] = field(default_factory=list)
    replay: Replay | None = None
    diff: str = ""
    policy_text: str = ""
    risk_level: float | None = None
    notes: list[str] = field(default_factory=list)


def model_of(routed: Sequence[Routed]) -> ModelInfo:
    """The model (and version) most of the history comes from: the one current bands are read for."""
    counts = Counter((item.model.name, item.model.version) for item in routed)
    name, version = counts.most_common(1)[0][0]
    return ModelInfo(name=name, version=version)


def labels_of(routed: Sequence[Routed]) -> list[str]:
    return sorted({label for item in routed for label in item.scores})


def calibrate_target(
    routed: Sequence[Routed],
    policy: Policy,
    policy_text: str,
    task: str,
    labels: Sequence[str],
    target: float,
    confidence: float,
    scope: Scope,
) -> Calibration:
    labelled = [item for item in routed if item.human is not None and item.weight > 0]
    model = model_of(routed)
    calibration = Calibration(task, "target_error", target, confidence, None, len(labelled), len(routed))
    delta = 1 - confidence
    for label in labels:
        current = _current_band(policy, task, model, label)
        accept = sgr(labelled, routed, Side(label, True), target, delta / 2)
        reject = sgr(labelled, routed, Side(label, False), target, delta / 2)
        high = accept.threshold if accept else 1.0
        low = reject.threshold if reject else 0.0
        notes = []
        if accept is None:
            notes.append("no acceptance threshold meets the target with this data: high = 1 (review all)")
        if reject is None:
            notes.append("no rejection threshold meets the target with this data: low = 0 (review all)")
        low = min(low, high)
        calibration.labels.append(
            LabelProposal(
                label, current, Band(low=round(low, 4), high=round(high, 4)), accept, reject, "; ".join(notes)
            )
        )
    steps = max(1, math.ceil(math.log2(max(2, len(labelled)))))
    needed = math.ceil(math.log(delta / 2 / steps) / math.log(1 - target))
    uncertified = any(p.accept is None or p.reject is None for p in calibration.labels)
    if uncertified and len(labelled) < 2 * needed:
        calibration.notes.append(
            f"even without a single error, a side needs about {needed} (effective) labelled predictions"
            f" to be certified at error {target:g} with confidence {confidence:g};"
            f" {len(labelled)} are labelled in all: audit more, or accept a higher target"
        )
    _finish(calibration, routed, policy, policy_text, scope)
    return calibration


def calibrate_budget(
    routed: Sequence[Routed],
    policy: Policy,
    policy_text: str,
    task: str,
    labels: Sequence[str],
    budget_per_hour: float,
    scope: Scope,
    window_hours: float = 24.0,
) -> Calibration:
    labelled = [item for item in routed if item.human is not None and item.weight > 0]
    model = model_of(routed)
    calibration = Calibration(task, "review_budget", None, None, budget_per_hour, len(labelled), len(routed))
    rate = arrival_per_hour(routed, window_hours)
    curves = {
        (label, accept): curve(labelled, routed, Side(label, accept))
        for label in labels
        for accept in (True, False)
    }

    def bands_at(level: float) -> dict[str, Band]:
        bands = {}
        for label in labels:
            high = threshold_at_risk(curves[(label, True)], level)
            low = min(threshold_at_risk(curves[(label, False)], level), high)
            bands[label] = Band(low=round(low, 4), high=round(high, 4))
        return bands

    looked_up = routings(routed, policy, task)

    def volume(level: float) -> float:
        return rate * review_share(looked_up, bands_at(level))

    low_level, high_level = 0.0, 1.0
    if volume(low_level) <= budget_per_hour:
        high_level = low_level
    else:
        for _ in range(30):
            middle = (low_level + high_level) / 2
            if volume(middle) <= budget_per_hour:
                high_level = middle
            else:
                low_level = middle
    calibration.risk_level = high_level
    if volume(high_level) > budget_per_hour:
        calibration.notes.append(
            f"the budget cannot be met by the bands: the audits alone need {volume(high_level):.1f} review"
            f" tasks per hour at {rate:.1f} predictions per hour; lower the audit rate"
        )
    for label, band in bands_at(high_level).items():
        calibration.labels.append(
            LabelProposal(label, _current_band(policy, task, model, label), band, None, None)
        )
    _finish(calibration, routed, policy, policy_text, scope)
    return calibration


def arrival_per_hour(routed: Sequence[Routed], window_hours: float) -> float:
    """Predictions per hour over the last `window_hours` of the history (or all of it if shorter)."""
    if not routed:
        return 0.0
    end = max(item.at for item in routed)
    first = min(item.at for item in routed)
    start = max(first, end - timedelta(hours=window_hours))
    hours = max((end - start).total_seconds() / 3600, 1 / 60)
    return sum(1 for item in routed if item.at >= start) / hours


@dataclass(frozen=True)
class Routing:
    """What the policy says about a routed prediction's labels, looked up once for many bands."""

    scores: tuple[tuple[str, float, Band], ...]  # label, score, the policy's band
    audit_rate: float  # the top label's


def routings(routed: Sequence[Routed], policy: Policy, task: str) -> list[Routing]:
    found = []
    for item in routed:
        labels = []
        audit_rate = 0.0
        for label, score in item.scores.items():
            rule = policy.rule_for(task, item.model, label)
            labels.append((label, score, rule.band if rule else Band(low=0.0, high=0.0)))
            if label == item.top and rule is not None:
                audit_rate = rule.audit_rate
        found.append(Routing(tuple(labels), audit_rate))
    return found


def review_share(routed: Sequence[Routing], bands: dict[str, Band]) -> float:
    """The share of predictions reviewed (grey band, plus the audit share of the decided) with
    `bands` for the calibrated labels and the policy's own bands for the others."""
    if not routed:
        return 0.0
    reviewed = 0.0
    for item in routed:
        grey = False
        for label, score, band in item.scores:
            band = bands.get(label, band)
            if band.low < score < band.high:
                grey = True
                break
        reviewed += 1.0 if grey else item.audit_rate
    return reviewed / len(routed)


# -- the proposed policy, replayed ---------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which rule of the policy file the proposal writes: the task's label rule, or the model's
    (and version's) label rule."""

    model: str | None = None
    version: str | None = None

    def section(self, task: str, label: str) -> str:
        if self.model and self.version:
            return f'tasks.{task}.models.{self.model}.versions."{self.version}".labels.{label}'
        if self.model:
            return f"tasks.{task}.models.{self.model}.labels.{label}"
        return f"tasks.{task}.labels.{label}"


def _current_band(policy: Policy, task: str, model: ModelInfo, label: str) -> Band:
    rule = policy.rule_for(task, model, label)
    if rule is None:
        raise ConfigError(f"the policy has no rule for task {task!r}")
    return rule.band


def _finish(
    calibration: Calibration, routed: Sequence[Routed], policy: Policy, text: str, scope: Scope
) -> None:
    proposed_text = proposed_policy_text(
        text, calibration.task, scope, {p.label: p.proposed for p in calibration.labels}, policy
    )
    calibration.policy_text = proposed_text
    calibration.diff = "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True),
            proposed_text.splitlines(keepends=True),
            "bands.toml (current)",
            "bands.toml (proposed)",
        )
    )
    proposed = parse_policy(proposed_text.encode(), "proposed policy")
    calibration.replay = replay(routed, policy, proposed)


_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def _normalise(section: str) -> str:
    return ".".join(part.strip().strip('"') for part in re.findall(r'"[^"]*"|[^.]+', section))


def proposed_policy_text(
    text: str, task: str, scope: Scope, bands: dict[str, Band], policy: Policy | None = None
) -> str:
    """The policy file with each label's band set in its rule (created after the task's last
    section when missing); comments and everything else stay as written.

    A task the file does not list is routed by `[default]`: its own `[tasks.<task>]` section is
    added with `[default]`'s band and audit rate, since listing the task would otherwise give it
    the built-in ones (0.4, 0.8, no audit). `[default]`'s label and model rules are not copied.
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    spec = (policy or parse_policy(text.encode(), "current policy")).spec
    default = spec.default
    if task not in spec.tasks:
        if default is None:
            raise ConfigError(f"the policy has no [tasks.{task}] section and no [default]")
        lines += [
            "\n",
            f"# {task} was routed by [default]: its band and audit rate, now the task's own.\n",
            f"[tasks.{task}]\n",
            f"low = {default.low}\n",
            f"high = {default.high}\n",
            f"audit_rate = {default.audit_rate}\n",
        ]
    for label, band in bands.items():
        section = _normalise(scope.section(task, label))
        headers = [(i, _normalise(m.group(1))) for i, line in enumerate(lines) if (m := _HEADER.match(line))]
        found = next((i for i, name in headers if name == section), None)
        values = [f"low = {band.low}\n", f"high = {band.high}\n"]
        if found is None:
            in_task = [
                i for i, name in headers if name == f"tasks.{task}" or name.startswith(f"tasks.{task}.")
            ]
            if not in_task:
                raise ConfigError(f"the policy has no [tasks.{task}] section to add the band of {label!r} to")
            end = _section_end(lines, in_task[-1])
            block = ["\n", f"[{scope.section(task, label)}]\n", *values]
            lines[end:end] = block
            continue
        end = _section_end(lines, found)
        body = lines[found + 1 : end]
        kept = [line for line in body if not re.match(r"^\s*(low|high)\s*=", line)]
        lines[found + 1 : end] = values + kept
    return "".join(lines)


def _section_end(lines: Sequence[str], header: int) -> int:
    """The index after the section's last key (before the blank lines and comments leading to the next)."""
    end = header + 1
    while end < len(lines) and not _HEADER.match(lines[end]):
        end += 1
    while end > header + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


def _prediction(item: Routed) -> Prediction:
    return Prediction(
        event_id=item.event_id,
        occurred_at=item.at,
        source="replay",
        task=item.task,
        model=item.model,
        item=Item(id=str(item.event_id), content_type="text/plain"),
        scores=item.scores,
    )


def _outcome(outputs: Sequence[Decision | ReviewTask]) -> tuple[str, Decision | None, bool]:
    decision = next((o for o in outputs if isinstance(o, Decision)), None)
    audited = any(isinstance(o, ReviewTask) for o in outputs) and decision is not None
    return (decision.outcome.value if decision else GREY_BAND), decision, audited


def _wrong(decision: Decision, label: str) -> bool:
    if decision.outcome is DecisionOutcome.AUTO_ACCEPTED:
        return label != decision.label
    return label == decision.label


def replay(
    routed: Sequence[Routed], current: Policy, proposed: Policy, now: datetime | None = None
) -> Replay:
    now = now or datetime.now(UTC)
    changes: Counter[str] = Counter()
    reviewed = {"current": 0.0, "proposed": 0.0}
    auto = {"current": 0, "proposed": 0}
    errors: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    truth: dict[str, list[bool]] = defaultdict(list)
    for item in routed:
        prediction = _prediction(item)
        outcomes = {}
        for name, policy in (("current", current), ("proposed", proposed)):
            outputs = route(prediction, policy, now)
            outcome, decision, _audited = _outcome(outputs)
            outcomes[name] = outcome
            if decision is None:
                reviewed[name] += 1
                continue
            auto[name] += 1
            rule = policy.rule_for(item.task, item.model, decision.label)
            reviewed[name] += rule.audit_rate if rule else 0.0
            if item.human is not None and item.weight > 0:
                errors[name].append((item.weight, _wrong(decision, item.human)))
            if item.ground_truth is not None:
                truth[name].append(_wrong(decision, item.ground_truth))
        if outcomes["current"] != outcomes["proposed"]:
            changes[f"{outcomes['current']} -> {outcomes['proposed']}"] += 1
    total = max(1, len(routed))
    rate = arrival_per_hour(routed, 24.0)
    hours = (max(i.at for i in routed) - min(i.at for i in routed)).total_seconds() / 3600 if routed else 0.0

    def estimate(name: str) -> tuple[float | None, float | None]:
        pairs = errors[name]
        weight = sum(w for w, _ in pairs)
        if weight <= 0:
            return None, None
        risk = sum(w for w, wrong in pairs if wrong) / weight
        n = weight * weight / sum(w * w for w, _ in pairs)
        return risk, clopper_pearson_upper(risk * n, n, 0.05)

    def true_error(name: str) -> float | None:
        return sum(truth[name]) / len(truth[name]) if truth[name] else None

    error_current, _ = estimate("current")
    error_proposed, bound_proposed = estimate("proposed")
    return Replay(
        predictions=len(routed),
        changes=dict(changes.most_common()),
        hours=hours,
        arrival_per_hour=rate,
        review_share_current=reviewed["current"] / total,
        review_share_proposed=reviewed["proposed"] / total,
        review_per_hour_current=rate * reviewed["current"] / total,
        review_per_hour_proposed=rate * reviewed["proposed"] / total,
        error_current=error_current,
        error_proposed=error_proposed,
        error_bound_proposed=bound_proposed,
        true_error_current=true_error("current"),
        true_error_proposed=true_error("proposed"),
        auto_share_current=auto["current"] / total,
        auto_share_proposed=auto["proposed"] / total,
    )
