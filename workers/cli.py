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
    from workers.registry import load_service, load_worker
    from workers.runtime.loop import Runner

    configure_logging(args.log_level)
    settings = load_settings()
    service = load_service(args.worker)
    if service is not None:
        service(settings)
        return 0
    runner = Runner(load_worker(args.worker, settings), settings)
    runner.install_signal_handlers()
    port = runner.metrics.serve(settings.metrics_port)
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
