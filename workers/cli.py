"""The hitl-workers command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

DEMO_PLAN = """\
The demo will run the whole pipeline on the bundled sample: producers emit predictions, feedback
and extractions; the band-router, feedback-triage and extraction-validator route them; review
tasks appear in Argilla; the label-sink writes resolved labels to Kafka and PostgreSQL.
The workers it needs are not built yet. The local stack it runs on is up: see
`deploy/local/stack status`, and Argilla at the HITL_ARGILLA_API_URL printed by `deploy/local/stack env`."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hitl-workers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the whole pipeline on the bundled sample")
    args = parser.parse_args(argv)
    if args.command == "demo":
        print(DEMO_PLAN)
    return 0
