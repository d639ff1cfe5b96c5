"""The band-router's routing as a user would write it with Quix Streams: JSON in, JSON out.

    .venv/bin/python bench/quix_router.py --input T --decisions T --review T --group G

The peer benchmark (`bench/peer.py`) runs it beside the real band-router. It reads JSON predictions,
applies the same policy (`deploy/policies/bands.toml`, looked up through `Policy.rule_for` and
memoised on plain values, as a hand-written app would keep a table) and the same zones, priorities
and audit sampling as `workers.band_router.routing`, on plain dicts, without validating the input.
Needs `pip install -e '.[bench]'` (quixstreams is a benchmark extra, never a runtime dependency).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quixstreams import Application

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workers.band_router.policy import LabelRule, load_policy  # noqa: E402
from workers.band_router.routing import priority_of  # noqa: E402
from workers.contracts import ModelInfo  # noqa: E402
from workers.sampling import in_sample  # noqa: E402

POLICY_FILE = REPO / "deploy" / "policies" / "bands.toml"


def make_router() -> Any:
    policy = load_policy(POLICY_FILE)
    rules: dict[tuple[str, str, str, str], LabelRule | None] = {}

    def rule(task: str, model: dict[str, str], label: str) -> LabelRule | None:
        key = (task, model["name"], model["version"], label)
        if key not in rules:
            rules[key] = policy.rule_for(task, ModelInfo(name=key[1], version=key[2]), label)
        return rules[key]

    def route(value: dict[str, Any]) -> list[dict[str, Any]]:
        now = datetime.now(UTC).isoformat()
        judged = []
        for label, score in value["scores"].items():
            found = rule(value["task"], value["model"], label)
            if found is None or math.isnan(score) or not 0 <= score <= 1:
                return []
            zone = "accept" if score >= found.band.high else "reject" if score <= found.band.low else "review"
            judged.append((label, score, found, zone))
        top = min(judged, key=lambda j: (-j[1], j[0]))
        grey = [j for j in judged if j[3] == "review"]
        if grey:
            priority = max(priority_of(j[1], j[2].band) for j in grey)
            return [_task(value, top, "grey_band", priority, now)]
        label, score, found, zone = top
        decision = {
            "_to": "decisions",
            "event_id": value["event_id"],
            "label": label,
            "outcome": "auto_accepted" if zone == "accept" else "auto_rejected",
            "score": score,
            "band": {"low": found.band.low, "high": found.band.high},
            "band_source": found.band_source,
            "policy_version": policy.version,
            "decided_at": now,
            "source": value,
        }
        if in_sample(uuid.UUID(value["event_id"]), found.audit_rate):
            return [decision, _task(value, top, "audit_sample", 0, now)]
        return [decision]

    return route


def _task(
    value: dict[str, Any], top: tuple[str, float, LabelRule, str], reason: str, priority: int, now: str
) -> dict[str, Any]:
    model = value["model"]
    return {
        "_to": "review",
        "task_id": value["event_id"],
        "kind": "moderation",
        "reason": reason,
        "priority": priority,
        "source": value,
        "suggestion": {"label": top[0], "score": top[1], "agent": f"{model['name']}@{model['version']}"},
        "created_at": now,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", required=True)
    parser.add_argument("--decisions", required=True)
    parser.add_argument("--review", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()
    app = Application(
        broker_address=os.environ.get("HITL_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        consumer_group=args.group,
        auto_offset_reset="earliest",
        auto_create_topics=False,
        use_changelog_topics=False,
        # Its state folder (unused: the app is stateless) out of the checkout.
        state_dir=tempfile.mkdtemp(prefix="quix-state-"),
        loglevel="WARNING",
    )
    source = app.topic(args.input, value_deserializer="json")
    decisions = app.topic(args.decisions, value_serializer="json")
    review = app.topic(args.review, value_serializer="json")
    routed = app.dataframe(source).apply(make_router(), expand=True)
    routed.filter(lambda v: v["_to"] == "decisions").to_topic(decisions)
    routed.filter(lambda v: v["_to"] == "review").to_topic(review)
    app.run()


if __name__ == "__main__":
    main()
