"""`hitl-workers report` and `hitl-workers calibrate`: read, compute, print; never change a policy."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from workers.band_router.policy import Policy, load_policy
from workers.config import Settings
from workers.errors import ConfigError, DependencyUnavailable
from workers.quality.calibration import (
    Calibration,
    Scope,
    Side,
    calibrate_budget,
    calibrate_target,
    curve,
    labels_of,
    model_of,
    routed_history,
)
from workers.quality.history import History, Window, connect, load_history
from workers.quality.report import MIN_AUDITS, Report, build_report


def read_history(settings: Settings, window: Window, schema: str | None) -> History:
    with connect(settings.postgres_dsn.get_secret_value(), schema) as conn:
        return load_history(conn, window)


def dead_letter_counts(settings: Settings) -> dict[str, dict[str, int]] | None:
    """Dead letters by topic and reason, over what the *.dlq topics retain; None if Kafka is down."""
    from workers.dlq import dead_letter_topics, list_dead_letters

    try:
        listings = list_dead_letters(settings, dead_letter_topics(settings), last=0)
    except (DependencyUnavailable, ConfigError):
        return None
    return {listing.topic: dict(listing.reasons) for listing in listings if not listing.missing}


def run_report(
    settings: Settings,
    window: Window,
    fmt: str,
    plot: Path | None,
    schema: str | None = None,
    policy_file: Path | None = None,
    out: TextIO = sys.stdout,
    with_dead_letters: bool = True,
) -> int:
    history = read_history(settings, window, schema)
    now = min(window.until, datetime.now(UTC)) if window.until else datetime.now(UTC)
    letters = dead_letter_counts(settings) if with_dead_letters else {}
    report = build_report(history, now, letters)
    if fmt == "json":
        document = report.to_json()
        document["dead_letters_available"] = letters is not None
        out.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        out.write(format_report(report, window, letters is not None))
    if plot is not None:
        task = window.task or _busiest_task(history)
        if task is None:
            raise ConfigError("no routed predictions in the window: nothing to plot")
        policy = load_policy(policy_file or settings.band_router.policy_file)
        written = plot_task(
            history, task, policy, plot, None, None, f"{task}: error against coverage (current bands)"
        )
        print(f"plot written to {written}", file=sys.stderr)
    return 0


def _busiest_task(history: History) -> str | None:
    counts: dict[str, int] = {}
    for decision in history.decisions:
        counts[decision.task] = counts.get(decision.task, 0) + 1
    return max(counts, key=lambda name: counts[name]) if counts else None


def plot_task(
    history: History,
    task: str,
    policy: Policy,
    path: Path,
    proposed: dict[str, Any] | None,
    target: float | None,
    title: str,
    labels: Sequence[str] | None = None,
    scope: Scope | None = None,
) -> Path:
    from workers.quality.plot import plot_error_coverage

    scope = scope or Scope()
    routed = routed_history(history, task, scope.model, scope.version)
    if not routed:
        raise ConfigError(f"no routed predictions of task {task!r} to plot")
    labelled = [item for item in routed if item.human is not None and item.weight > 0]
    chosen = list(labels or labels_of(routed))
    model = model_of(routed)
    curves = {
        label: (curve(labelled, routed, Side(label, True)), curve(labelled, routed, Side(label, False)))
        for label in chosen
    }
    current = {}
    for label in chosen:
        rule = policy.rule_for(task, model, label)
        if rule is not None:
            current[label] = rule.band
    return plot_error_coverage(path, curves, current, proposed, target, title)


def run_calibrate(
    settings: Settings,
    task: str,
    label: str | None,
    target_error: float | None,
    confidence: float,
    budget: float | None,
    window: Window,
    scope: Scope,
    policy_file: Path | None,
    plot: Path | None,
    schema: str | None = None,
    fmt: str = "table",
    window_hours: float = 24.0,
    out: TextIO = sys.stdout,
) -> int:
    if (target_error is None) == (budget is None):
        raise ConfigError("give exactly one of --target-error and --review-budget")
    if target_error is not None and not 0 < target_error < 1:
        raise ConfigError("--target-error is a share between 0 and 1, for example 0.02")
    if not 0 < confidence < 1:
        raise ConfigError("--confidence is between 0 and 1, for example 0.95")
    path = policy_file or settings.band_router.policy_file
    policy = load_policy(path)
    text = path.read_text(encoding="utf-8")
    history = read_history(settings, Window(window.since, window.until, task), schema)
    routed = routed_history(history, task, scope.model, scope.version)
    if not routed:
        raise ConfigError(f"no routed predictions of task {task!r} in the window")
    labels = [label] if label else labels_of(routed)
    if target_error is not None:
        calibration = calibrate_target(routed, policy, text, task, labels, target_error, confidence, scope)
    else:
        assert budget is not None
        calibration = calibrate_budget(routed, policy, text, task, labels, budget, scope, window_hours)
    if fmt == "json":
        out.write(json.dumps(asdict(calibration), indent=2, default=str) + "\n")
    else:
        out.write(format_calibration(calibration, path))
    if plot is not None:
        proposed = {p.label: p.proposed for p in calibration.labels}
        title = f"{task}: error against coverage, current and recommended bands"
        written = plot_task(history, task, policy, plot, proposed, target_error, title, labels, scope)
        print(f"plot written to {written}", file=sys.stderr)
    return 0


# -- text ----------------------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return "  (none)\n"
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    ]
    return "\n".join(lines) + "\n"


def format_report(report: Report, window: Window, dead_letters_available: bool = True) -> str:
    since = window.since.isoformat() if window.since else "the beginning"
    until = window.until.isoformat() if window.until else "now"
    parts = [f"Loop quality from {since} to {until}{f' for task {window.task}' if window.task else ''}\n"]
    parts.append(
        f"\nAutomatic decisions: error measured on the audit sample (95% Wilson interval; "
        f"at least {MIN_AUDITS} reviewed audits to tell)\n"
    )
    parts.append(
        _table(
            (
                "task",
                "model@version",
                "label",
                "outcome",
                "decisions",
                "audited",
                "errors",
                "error",
                "95% interval",
                "verdict",
                "true error",
            ),
            [
                (
                    e.task,
                    f"{e.model}@{e.version}",
                    e.label,
                    e.outcome.removeprefix("auto_"),
                    str(e.decisions),
                    str(e.reviewed_audits),
                    str(e.errors),
                    _pct(e.interval.estimate if e.interval else None),
                    f"{_pct(e.interval.low)} - {_pct(e.interval.high)}" if e.interval else "-",
                    e.verdict,
                    _pct(e.true_error),
                )
                for e in report.auto_errors
            ],
        )
    )
    if any(e.true_error is not None for e in report.auto_errors):
        parts.append("  (true error: against the ground truth the producer sent, over every decision)\n")
    parts.append("\nReview rate\n")
    parts.append(
        _table(
            (
                "task",
                "model@version",
                "routed",
                "grey band",
                "grey share",
                "decided",
                "audited",
                "audit share",
            ),
            [
                (
                    r.task,
                    f"{r.model}@{r.version}",
                    str(r.routed),
                    str(r.grey_band),
                    _pct(r.grey_share),
                    str(r.decisions),
                    str(r.audits),
                    _pct(r.audit_share),
                )
                for r in report.review_rates
            ],
        )
    )
    parts.append(
        "\nBacklog (tasks without a resolution) and time to label (task created -> first resolution)\n"
    )
    latency = {t.kind: t for t in report.time_to_label}
    parts.append(
        _table(
            ("kind", "open", "oldest", "<1h", "1-24h", ">24h", "labelled", "p50", "p99"),
            [
                (
                    b.kind,
                    str(b.open),
                    _duration(b.oldest_age_seconds),
                    str(b.by_age["under_1h"]),
                    str(b.by_age["1h_to_24h"]),
                    str(b.by_age["over_24h"]),
                    str(latency[b.kind].labelled),
                    _duration(latency[b.kind].p50_seconds),
                    _duration(latency[b.kind].p99_seconds),
                )
                for b in report.backlog
            ],
        )
    )
    parts.append("\nReviewer agreement (kappa: 1 perfect, 0 chance; items with two answers or more)\n")
    parts.append(
        _table(
            ("kind", "task", "method", "kappa", "items", "reviewers"),
            [
                (
                    a.kind,
                    a.task,
                    a.agreement.method if a.agreement else "none: one answer per item",
                    "-" if a.agreement is None or a.agreement.kappa is None else f"{a.agreement.kappa:.3f}",
                    str(a.agreement.items if a.agreement else 0),
                    str(a.agreement.raters if a.agreement else 0),
                )
                for a in report.agreement
            ],
        )
    )
    reviewer_rows = [
        (a.kind, a.task, reviewer, _pct(i.estimate), f"{_pct(i.low)} - {_pct(i.high)}")
        for a in report.agreement
        for reviewer, i in a.reviewers.items()
    ]
    if reviewer_rows:
        parts.append("  agreement of each reviewer with the majority:\n")
        parts.append(_table(("kind", "task", "reviewer", "agrees", "95% interval"), reviewer_rows))
    parts.append("\nGrey band: the model's suggested label kept by the reviewers\n")
    parts.append(
        _table(
            ("task", "model@version", "suggested", "reviewed", "kept", "share", "95% interval"),
            [
                (
                    g.task,
                    f"{g.model}@{g.version}",
                    g.label,
                    str(g.reviewed),
                    str(g.kept),
                    _pct(g.interval.estimate if g.interval else None),
                    f"{_pct(g.interval.low)} - {_pct(g.interval.high)}" if g.interval else "-",
                )
                for g in report.grey_band
            ],
        )
    )
    parts.append("\nDead letters by reason (what the *.dlq topics retain)\n")
    if not dead_letters_available:
        parts.append("  (Kafka unavailable: not counted)\n")
    else:
        rows = [
            (topic, reason, str(count))
            for topic, reasons in sorted(report.dead_letters.items())
            for reason, count in sorted(reasons.items(), key=lambda item: -item[1])
        ]
        parts.append(_table(("topic", "reason", "count"), rows))
    return "".join(parts)


def format_calibration(calibration: Calibration, policy_path: Path) -> str:
    parts = []
    if calibration.mode == "target_error":
        parts.append(
            f"Calibration of task {calibration.task} for an automatic error <= {calibration.target_error:g} "
            f"with confidence {calibration.confidence:g} (SGR, Clopper-Pearson bounds)\n"
        )
    else:
        parts.append(
            f"Calibration of task {calibration.task} for a review budget of {calibration.budget_per_hour:g} "
            f"tasks per hour (one error level for every label: {_pct(calibration.risk_level)})\n"
        )
    parts.append(
        f"  history: {calibration.predictions} routed predictions, {calibration.labelled} of them labelled"
        " by reviewers (grey band and audits, audits weighted by their sampling rate)\n\n"
    )
    rows = []
    for proposal in calibration.labels:
        accept, reject = proposal.accept, proposal.reject
        rows.append(
            (
                proposal.label,
                f"{proposal.current.low:g} / {proposal.current.high:g}",
                f"{proposal.proposed.low:g} / {proposal.proposed.high:g}",
                f"{_pct(accept.risk, 2)} (<= {_pct(accept.bound, 2)}), decides {_pct(accept.coverage)}"
                if accept
                else "-",
                f"{_pct(reject.risk, 2)} (<= {_pct(reject.bound, 2)}), decides {_pct(reject.coverage)}"
                if reject
                else "-",
            )
        )
    parts.append(
        _table(("label", "current low / high", "proposed low / high", "accept side", "reject side"), rows)
    )
    for proposal in calibration.labels:
        if proposal.note:
            parts.append(f"  {proposal.label}: {proposal.note}\n")
    parts.extend(f"  note: {note}\n" for note in calibration.notes)
    replay = calibration.replay
    if replay is not None:
        parts.append(
            f"\nReplay of the {replay.predictions} routed predictions ({replay.hours:.0f} h of history, "
            f"{replay.arrival_per_hour:.1f} per hour over the last 24 h) through both policies\n"
        )
        parts.append(
            _table(
                ("", "current", "proposed"),
                [
                    (
                        "decided automatically",
                        _pct(replay.auto_share_current),
                        _pct(replay.auto_share_proposed),
                    ),
                    (
                        "reviewed (grey band + audits)",
                        _pct(replay.review_share_current),
                        _pct(replay.review_share_proposed),
                    ),
                    (
                        "review tasks per hour",
                        f"{replay.review_per_hour_current:.1f}",
                        f"{replay.review_per_hour_proposed:.1f}",
                    ),
                    (
                        "automatic error, estimated",
                        _pct(replay.error_current, 2),
                        f"{_pct(replay.error_proposed, 2)}"
                        f" (95% bound {_pct(replay.error_bound_proposed, 2)})",
                    ),
                    (
                        "automatic error, ground truth",
                        _pct(replay.true_error_current, 2),
                        _pct(replay.true_error_proposed, 2),
                    ),
                ],
            )
        )
        if replay.changes:
            parts.append("  decisions that change:\n")
            parts.extend(f"    {change}: {count}\n" for change, count in replay.changes.items())
        else:
            parts.append("  no decision changes\n")
    parts.append(f"\nProposed change to {policy_path} (not applied):\n\n")
    parts.append(calibration.diff or "  (no change)\n")
    return "".join(parts)
