"""The hitl-workers command line: run a worker, manage topics, export training data, run the demo,
report on the loop's quality and calibrate its bands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import TYPE_CHECKING

from workers import __version__
from workers.config import load_settings
from workers.errors import ConfigError, HitlError
from workers.logs import configure_logging

if TYPE_CHECKING:
    from workers.quality.history import Window


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.action(args) or 0)
    except HitlError as error:
        print(f"hitl-workers: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hitl-workers", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one worker until SIGTERM")
    run.add_argument("worker", help="a worker's name, or module:factory for a worker of your own")
    run.add_argument("--log-level", default="INFO")
    run.add_argument(
        "--processes",
        type=_positive,
        default=1,
        metavar="N",
        help="run N processes of the worker, members of one consumer group, stopped together by "
        "SIGTERM; child i serves metrics on the worker's port + 100 x i",
    )
    run.set_defaults(action=run_worker)

    topics = commands.add_parser("topics", help="create or describe the pipeline's topics")
    topic_actions = topics.add_subparsers(dest="topics_command", required=True)
    topic_actions.add_parser("create", help="create every missing topic (idempotent)").set_defaults(
        action=create_topics
    )
    topic_actions.add_parser("describe", help="partitions and replication of every topic").set_defaults(
        action=describe_topics
    )

    export = commands.add_parser("export", help="write training examples from PostgreSQL to a file")
    export.add_argument("--kind", required=True, choices=["moderation", "rag_answer", "extraction"])
    export.add_argument("--since", required=True, help="ISO-8601 date or date and time (UTC if no offset)")
    export.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"])
    export.add_argument("--output", help="file to write (default <kind>.<format>; - for stdout, jsonl only)")
    export.add_argument("--system-prompt", help="system message of rag_answer examples")
    export.set_defaults(action=export_examples)

    dlq = commands.add_parser("dlq", help="list dead letters, or replay them to their source topic")
    dlq_actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_actions.add_parser("list", help="counts by reason and the last few, with their headers")
    listing.add_argument("topic", nargs="?", help="a dead-letter topic (default: every one of the settings)")
    listing.add_argument("--last", type=int, default=5, help="how many of the latest to show")
    listing.set_defaults(action=list_dead_letters)
    replaying = dlq_actions.add_parser("replay", help="produce dead letters again to their source topic")
    replaying.add_argument("topic", help="the dead-letter topic")
    replaying.add_argument("--reason", help="only the letters with this reason")
    replaying.add_argument("--since", help="only letters that failed at or after this ISO-8601 time (UTC)")
    replaying.add_argument("--dry-run", action="store_true", help="count, produce nothing")
    replaying.set_defaults(action=replay_dead_letters)

    commands.add_parser("demo", help="run the whole pipeline on the bundled sample").set_defaults(
        action=run_demo
    )
    add_quality_commands(commands)
    return parser


def add_quality_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report", help="loop quality: automatic error, review rate, backlog, agreement"
    )
    report.add_argument("--since", help="ISO-8601 date or date and time (UTC if no offset)")
    report.add_argument("--until", help="ISO-8601 date or date and time, excluded (default: now)")
    report.add_argument("--task", help="one prediction task (or review kind: rag_answer, extraction)")
    report.add_argument("--format", default="table", choices=["table", "json"])
    report.add_argument("--plot", help="also write error against coverage per label to this PNG")
    report.add_argument("--schema", help="PostgreSQL schema of the quality tables (default: the DSN's)")
    report.add_argument(
        "--policy", help="band policy whose bands the plot marks (default: the band-router's)"
    )
    report.set_defaults(action=quality_report)

    calibrate = commands.add_parser(
        "calibrate", help="recommend band edges from the labelled history (never applied)"
    )
    calibrate.add_argument("--task", required=True)
    calibrate.add_argument("--label", help="only this label (default: every label of the task)")
    goal = calibrate.add_mutually_exclusive_group(required=True)
    goal.add_argument("--target-error", type=float, help="automatic error to stay under, e.g. 0.02")
    goal.add_argument("--review-budget", type=float, metavar="N_PER_HOUR", help="review tasks per hour")
    calibrate.add_argument("--confidence", type=float, default=0.95, help="1 - delta for --target-error")
    calibrate.add_argument("--model", help="calibrate this model's predictions (and write its label rule)")
    calibrate.add_argument("--model-version", help="with --model: this version only")
    calibrate.add_argument("--since", help="ISO-8601 start of the history used")
    calibrate.add_argument("--until", help="ISO-8601 end of the history used (excluded)")
    calibrate.add_argument("--rate-window-hours", type=float, default=24.0, help="recent arrival rate window")
    calibrate.add_argument(
        "--policy", help="the current band policy (default: HITL_BAND_ROUTER__POLICY_FILE)"
    )
    calibrate.add_argument(
        "--plot", help="PNG of error against coverage (default calibration-<task>.png; - for none)"
    )
    calibrate.add_argument("--format", default="table", choices=["table", "json"])
    calibrate.add_argument("--schema", help="PostgreSQL schema of the quality tables (default: the DSN's)")
    calibrate.set_defaults(action=quality_calibrate)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def installed_version() -> str:
    """The installed distribution's version; the source tree's when it is not installed."""
    try:
        return metadata.version("hitl-workers")
    except metadata.PackageNotFoundError:
        return __version__


def run_worker(args: argparse.Namespace) -> int:
    from workers.registry import load_service, load_worker, metrics_port
    from workers.runtime.loop import Runner

    configure_logging(args.log_level)
    settings = load_settings()
    service = load_service(args.worker)
    if service is not None and args.processes > 1:
        raise ConfigError(
            f"--processes is for Kafka workers; {args.worker} is a service with a port of its own"
        )
    if service is not None:
        service(settings)
        return 0
    if args.processes > 1:
        from workers.supervisor import run_processes

        port = metrics_port(args.worker, settings)
        return run_processes(args.worker, args.processes, port, ["--log-level", args.log_level])
    runner = Runner(load_worker(args.worker, settings), settings)
    runner.install_signal_handlers()
    port = runner.metrics.serve(metrics_port(args.worker, settings))
    print(f"metrics on :{port}/metrics", file=sys.stderr, flush=True)
    runner.run()
    return 0


def export_examples(args: argparse.Namespace) -> int:
    from workers.label_sink.export import DEFAULT_SYSTEM_PROMPT, parse_since, run_export

    return run_export(
        load_settings(),
        args.kind,
        parse_since(args.since),
        args.format,
        args.output,
        args.system_prompt or DEFAULT_SYSTEM_PROMPT,
    )


def list_dead_letters(args: argparse.Namespace) -> int:
    from workers.dlq import dead_letter_topics, format_listing
    from workers.dlq import list_dead_letters as listing

    settings = load_settings()
    for found in listing(settings, [args.topic] if args.topic else dead_letter_topics(settings), args.last):
        print("\n".join(format_listing(found)))
    return 0


def replay_dead_letters(args: argparse.Namespace) -> int:
    from workers.dlq import replay
    from workers.label_sink.export import parse_since

    since = parse_since(args.since) if args.since else None
    count = replay(load_settings(), args.topic, reason=args.reason, since=since, dry_run=args.dry_run)
    verb = "would replay" if args.dry_run else "replayed"
    targets = ", ".join(f"{n} to {topic}" for topic, n in sorted(count.by_target.items()))
    print(
        f"{verb} {count.replayed} of {count.selected} dead letters{f' ({targets})' if targets else ''}; "
        f"{count.already_replayed} already replayed, {count.not_replayable} not replayable (value cut)"
    )
    return 0


def _window(args: argparse.Namespace) -> Window:
    from workers.label_sink.export import parse_since
    from workers.quality.history import Window

    since = parse_since(args.since) if args.since else None
    until = parse_since(args.until) if args.until else None
    return Window(since, until, args.task)


def quality_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workers.quality.commands import run_report

    return run_report(
        load_settings(),
        _window(args),
        args.format,
        Path(args.plot) if args.plot else None,
        schema=args.schema,
        policy_file=Path(args.policy) if args.policy else None,
    )


def quality_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workers.quality.calibration import Scope
    from workers.quality.commands import run_calibrate
    from workers.quality.plot import matplotlib_available

    if args.model_version and not args.model:
        raise ConfigError("--model-version needs --model")
    plot = None
    if args.plot != "-":
        plot = Path(args.plot or f"calibration-{args.task}.png")
        if not args.plot and not matplotlib_available():
            print("no plot: matplotlib is not installed (pip install 'hitl-workers[plot]')", file=sys.stderr)
            plot = None
    return run_calibrate(
        load_settings(),
        args.task,
        args.label,
        args.target_error,
        args.confidence,
        args.review_budget,
        _window(args),
        Scope(args.model, args.model_version),
        Path(args.policy) if args.policy else None,
        plot,
        schema=args.schema,
        fmt=args.format,
        window_hours=args.rate_window_hours,
    )


def run_demo(_args: argparse.Namespace) -> int:
    from workers.demo.run import run_demo as demo

    return demo()


def create_topics(_args: argparse.Namespace) -> int:
    from workers.runtime.topics import create_topics as create

    for name, outcome in create(load_settings()).items():
        print(f"{outcome:8} {name}")
    return 0


def describe_topics(_args: argparse.Namespace) -> int:
    from workers.runtime.topics import TopicDescription
    from workers.runtime.topics import describe_topics as describe

    for topic in describe(load_settings()):
        if isinstance(topic, TopicDescription):
            print(f"{topic.name:32} partitions={topic.partitions} replication={topic.replication_factor}")
        else:
            print(f"{topic:32} missing")
    return 0
