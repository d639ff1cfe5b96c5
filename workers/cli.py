"""The hitl-workers command line: run a worker, manage topics, export training data, run the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from workers import __version__
from workers.config import load_settings
from workers.errors import HitlError
from workers.logs import configure_logging


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
    return parser


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
    if service is not None:
        service(settings)
        return 0
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
