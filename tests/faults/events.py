"""The fault suite's input stream: mixed predictions, feedback and extractions, each with what it must become.

Every event says what the pipeline owes for it (`Expected`), so the reconciliation can check each
input event id against what came out. Scores, ratings and outputs are chosen so that a known share
reaches review: grey-band and audited predictions, thumbs-down feedback, extractions that fail
their schema. Review answers are what a careful reviewer gives (`answer`).
"""

from __future__ import annotations

import importlib.util
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.services import REPO_DIR
from workers.band_router.routing import audit_draw

AUDIT_RATE = 0.03
POLICY = f"""\
version = "faults-1"

[tasks.moderation]
low = 0.4
high = 0.8
audit_rate = {AUDIT_RATE}
"""

_spec = importlib.util.spec_from_file_location("hitl_samples_generate", REPO_DIR / "samples" / "generate.py")
assert _spec is not None and _spec.loader is not None
samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(samples)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class Expected:
    """What one input event must become."""

    decision: bool = False
    valid_extraction: bool = False
    feedback_row: bool = False
    task: bool = False
    dead_letter: str | None = None
    """The input topic's dead-letter reason, for hostile input."""
    dead_letter_reasons: frozenset[str] = frozenset()
    """Other reasons accepted for the same input, where the README documents more than one."""


@dataclass
class Event:
    """One input message: its topic ('predictions', 'feedback', 'extractions'), bytes and due outcome."""

    event_id: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    expected: Expected
    kind: str
    answer: dict[str, Any] | None = None
    """The review answer, by Argilla question name, when the event reaches review."""
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _json(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


JSON_HEADERS = [("content-type", b"application/json")]


class Stream:
    """A deterministic generator of mixed events, numbered across the whole suite."""

    def __init__(self, seed: int = 9) -> None:
        self.rng = random.Random(seed)
        self.count = 0

    def _id(self) -> str:
        self.count += 1
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _at(self) -> str:
        return (START + timedelta(seconds=self.count)).isoformat().replace("+00:00", "Z")

    def prediction(self, zone: str | None = None) -> Event:
        event_id = self._id()
        roll = self.rng.random()
        zone = zone or ("grey" if roll < 0.07 else "accept" if roll < 0.55 else "reject")
        toxic = {"grey": 0.6, "accept": 0.93, "reject": 0.08}[zone]
        body = {
            "event_id": event_id,
            "occurred_at": self._at(),
            "source": "comment-service",
            "task": "moderation",
            "model": {"name": "toxicity-bert", "version": "2.3.1"},
            "item": {
                "id": f"comment-{self.count}",
                "content_type": "text/plain",
                "text": self.rng.choice(samples.FRIENDLY + samples.HOSTILE),
            },
            "scores": {"toxic": toxic, "ok": round(1 - toxic, 4)},
            "trace_id": f"trace-{self.count}",
        }
        audited = zone != "grey" and audit_draw(uuid.UUID(event_id)) < AUDIT_RATE
        expected = Expected(decision=zone != "grey", task=zone == "grey" or audited)
        label = "toxic" if toxic > 0.5 else "ok"
        return Event(
            event_id,
            "predictions",
            event_id.encode(),
            _json(body),
            JSON_HEADERS,
            expected,
            "moderation",
            {"label": label},
            meta={"body": body},
        )

    def feedback(self, rating: str | None = None, **overrides: Any) -> Event:
        event_id = self._id()
        rating = rating or ("down" if self.rng.random() < 0.06 else "up")
        question, answer, doc, context = self.rng.choice(samples.KNOWLEDGE)
        body = {
            "event_id": event_id,
            "occurred_at": self._at(),
            "session_id": f"session-{self.count // 3}",
            "question": question,
            "answer": answer,
            "contexts": [{"doc_id": doc, "text": context, "score": 0.81}],
            "rating": rating,
            "comment": "Wrong limit." if rating == "down" else None,
            "user_id": f"user-{self.count % 40}",
            "model": {"name": "support-assistant", "version": "2026-10"},
            "prompt_version": "rag-v7",
        } | overrides
        expected = Expected(feedback_row=True, task=rating == "down")
        return Event(
            event_id,
            "feedback",
            event_id.encode(),
            _json(body),
            JSON_HEADERS,
            expected,
            "rag_answer",
            {"verdict": "correct"},
            meta={"body": body},
        )

    def extraction(self, valid: bool | None = None) -> Event:
        event_id = self._id()
        valid = self.rng.random() >= 0.08 if valid is None else valid
        schema = "invoice" if self.count % 3 else "resume"
        text, data = (
            samples.invoice(self.rng, self.count)
            if schema == "invoice"
            else samples.resume(self.rng, self.count)
        )
        output = dict(data)
        if not valid:
            output.pop("invoice_number" if schema == "invoice" else "full_name", None)
        body = {
            "event_id": event_id,
            "occurred_at": self._at(),
            "document": {"id": f"doc-{schema}-{self.count}", "text": text},
            "schema_name": schema,
            "schema_version": "1",
            "raw_output": json.dumps(output, ensure_ascii=False),
            "model": {"name": "gpt-extract", "version": "2026-09"},
        }
        expected = Expected(valid_extraction=valid, task=not valid)
        answer = {"corrected_json": json.dumps(data, indent=2, ensure_ascii=False)}
        return Event(
            event_id,
            "extractions",
            event_id.encode(),
            _json(body),
            JSON_HEADERS,
            expected,
            "extraction",
            answer,
            meta={"body": body, "schema": schema},
        )

    def mixed(self, count: int) -> list[Event]:
        """`count` events: half predictions, a third feedback, the rest extractions, shuffled."""
        events: list[Event] = []
        for i in range(count):
            share = i % 6
            events.append(
                self.prediction() if share < 3 else self.feedback() if share < 5 else self.extraction()
            )
        self.rng.shuffle(events)
        return events
