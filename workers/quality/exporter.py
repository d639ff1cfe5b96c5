"""`hitl-workers run quality-exporter`: the report's figures as Prometheus gauges.

Every HITL_QUALITY__REFRESH_SECONDS (default 60) it recomputes the report over the last
HITL_QUALITY__WINDOW_HOURS (default 168) from the quality tables and the dead-letter topics, and
serves the latest figures on /metrics (port HITL_METRICS_PORT, else 9410). A refresh that fails
(PostgreSQL down) keeps the previous figures, counts hitl_quality_refresh_failures_total and is
tried again at the next interval; hitl_quality_refreshed_timestamp_seconds says how fresh they are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from workers.config import Settings
from workers.errors import ConfigError, HitlError
from workers.logs import log
from workers.quality.commands import dead_letter_counts, read_history
from workers.quality.history import Window
from workers.quality.report import Report, build_report
from workers.stopping import stop_on_signals

logger = logging.getLogger("hitl.quality")
NAME = "quality-exporter"


MODEL = ["task", "model", "version", "label"]


def gauges(report: Report) -> Iterator[Metric]:
    """The report as metric families (one sample per group and figure)."""
    yield from _auto_error(report)
    yield from _review_rate(report)
    yield from _backlog(report)
    yield from _agreement(report)
    yield from _grey_band_and_dead_letters(report)


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def _auto_error(report: Report) -> Iterator[Metric]:
    keyed = [*MODEL, "outcome"]
    error = _gauge(
        "hitl_quality_auto_error",
        "Automatic error from the audit sample: estimate and 95% Wilson bounds",
        [*keyed, "bound"],
    )
    audited = _gauge("hitl_quality_audited", "Reviewed audits behind hitl_quality_auto_error", keyed)
    decisions = _gauge("hitl_quality_decisions", "Automatic decisions in the window", keyed)
    true_error = _gauge(
        "hitl_quality_true_error", "Automatic error against the producer's ground truth", keyed
    )
    for e in report.auto_errors:
        keys = [e.task, e.model, e.version, e.label, e.outcome]
        audited.add_metric(keys, e.reviewed_audits)
        decisions.add_metric(keys, e.decisions)
        if e.interval is not None:
            for bound, value in (
                ("estimate", e.interval.estimate),
                ("low", e.interval.low),
                ("high", e.interval.high),
            ):
                error.add_metric([*keys, bound], value)
        if e.true_error is not None:
            true_error.add_metric(keys, e.true_error)
    yield from (error, audited, decisions, true_error)


def _review_rate(report: Report) -> Iterator[Metric]:
    review_rate = _gauge(
        "hitl_quality_review_rate",
        "Grey-band share of routed predictions (reason grey_band); audit share of automatic decisions",
        ["task", "model", "version", "reason"],
    )
    routed = _gauge("hitl_quality_routed", "Routed predictions in the window", ["task", "model", "version"])
    for r in report.review_rates:
        routed.add_metric([r.task, r.model, r.version], r.routed)
        for reason, share in (("grey_band", r.grey_share), ("audit_sample", r.audit_share)):
            if share is not None:
                review_rate.add_metric([r.task, r.model, r.version, reason], share)
    yield from (review_rate, routed)


def _backlog(report: Report) -> Iterator[Metric]:
    backlog = _gauge("hitl_quality_backlog_tasks", "Review tasks without a resolution", ["kind", "age"])
    oldest = _gauge("hitl_quality_backlog_oldest_seconds", "Age of the oldest open review task", ["kind"])
    latency = _gauge(
        "hitl_quality_time_to_label_seconds", "Task creation to first resolution", ["kind", "quantile"]
    )
    for b in report.backlog:
        for age, count in b.by_age.items():
            backlog.add_metric([b.kind, age], count)
        oldest.add_metric([b.kind], b.oldest_age_seconds or 0.0)
    for t in report.time_to_label:
        for quantile, value in (("0.5", t.p50_seconds), ("0.99", t.p99_seconds)):
            if value is not None:
                latency.add_metric([t.kind, quantile], value)
    yield from (backlog, oldest, latency)


def _agreement(report: Report) -> Iterator[Metric]:
    keyed = ["kind", "task", "method"]
    kappa = _gauge(
        "hitl_quality_kappa", "Reviewer agreement: Cohen's (two reviewers) or Fleiss' kappa", keyed
    )
    items = _gauge("hitl_quality_kappa_items", "Items behind hitl_quality_kappa", keyed)
    majority = _gauge(
        "hitl_quality_reviewer_majority_agreement",
        "Share of a reviewer's answers equal to the majority",
        ["kind", "task", "reviewer"],
    )
    for a in report.agreement:
        if a.agreement is not None:
            items.add_metric([a.kind, a.task, a.agreement.method], a.agreement.items)
            if a.agreement.kappa is not None:
                kappa.add_metric([a.kind, a.task, a.agreement.method], a.agreement.kappa)
        for reviewer, interval in a.reviewers.items():
            majority.add_metric([a.kind, a.task, reviewer], interval.estimate)
    yield from (kappa, items, majority)


def _grey_band_and_dead_letters(report: Report) -> Iterator[Metric]:
    kept = _gauge("hitl_quality_grey_band_kept", "Share of grey-band suggestions the reviewers kept", MODEL)
    for g in report.grey_band:
        if g.interval is not None:
            kept.add_metric([g.task, g.model, g.version, g.label], g.interval.estimate)
    letters = _gauge("hitl_quality_dead_letters", "Dead letters the *.dlq topics retain", ["topic", "reason"])
    for topic, reasons in report.dead_letters.items():
        for reason, count in reasons.items():
            letters.add_metric([topic, reason], count)
    yield from (kept, letters)


class QualityCollector(Collector):
    """Serves the latest report; `refresh` replaces it."""

    def __init__(self) -> None:
        self._report: Report | None = None
        self._refreshed_at = 0.0
        self._failures = 0
        self._lock = threading.Lock()

    def update(self, report: Report, at: datetime) -> None:
        with self._lock:
            self._report, self._refreshed_at = report, at.timestamp()

    def failed(self) -> None:
        with self._lock:
            self._failures += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            report, refreshed_at, failures = self._report, self._refreshed_at, self._failures
        fresh = GaugeMetricFamily(
            "hitl_quality_refreshed_timestamp_seconds", "When the figures were last computed"
        )
        fresh.add_metric([], refreshed_at)
        yield fresh
        failed = CounterMetricFamily("hitl_quality_refresh_failures", "Refreshes that failed (figures kept)")
        failed.add_metric([], failures)
        yield failed
        if report is not None:
            yield from gauges(report)


def refresh(settings: Settings, collector: QualityCollector, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    window = Window(since=now - timedelta(hours=settings.quality.window_hours), until=None)
    history = read_history(settings, window, None)
    letters = dead_letter_counts(settings) or {}
    collector.update(build_report(history, now, letters), now)


def serve(settings: Settings) -> None:
    from workers.registry import metrics_port

    registry = CollectorRegistry()
    collector = QualityCollector()
    registry.register(collector)
    port = metrics_port(NAME, settings)
    try:
        server, _thread = start_http_server(port, addr="0.0.0.0", registry=registry)
    except OSError as error:
        raise ConfigError(
            f"HITL_METRICS_PORT={port}: cannot serve metrics there ({error.strerror})"
        ) from error
    log(logger, "started", worker=NAME, port=int(server.server_port))
    stop = threading.Event()
    stop_on_signals(logger, stop.set)
    while not stop.is_set():
        try:
            refresh(settings, collector)
        except HitlError as error:
            collector.failed()
            log(logger, "refresh_failed", logging.WARNING, error=str(error)[:500])
        stop.wait(settings.quality.refresh_seconds)
    server.shutdown()
