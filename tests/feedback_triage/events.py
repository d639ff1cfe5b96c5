"""Feedback events for the feedback-triage tests, and what the worker must make of them."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.contracts import Feedback, ModelInfo, Rating, RetrievedContext

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def feedback(**fields: Any) -> Feedback:
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": T0,
        "session_id": "session-1",
        "question": "How do I reset my password?",
        "answer": "Open Settings, then Security, then choose Reset password.",
        "contexts": (
            RetrievedContext(
                doc_id="kb-12", text="To reset a password, open Settings > Security.", score=0.91
            ),
            RetrievedContext(doc_id="kb-40", text="Passwords expire every 90 days.", score=0.42),
        ),
        "rating": Rating.DOWN,
        "comment": None,
        "user_id": "user-1",
        "model": ModelInfo(name="support-rag", version="2.1.0"),
        "prompt_version": "p-7",
    }
    values.update(fields)
    return Feedback(**values)


def answer_key(event: Feedback) -> bytes:
    """The migration's definition, computed independently."""
    return hashlib.sha256(event.question.encode() + b"\x00" + event.answer.encode()).digest()


def latest_votes(events: Iterable[Feedback]) -> set[uuid.UUID]:
    """The event ids of the votes that count: per session, answer and voter, the latest."""
    latest: dict[tuple[object, ...], Feedback] = {}
    for event in events:
        voter: object = event.user_id if event.user_id is not None else event.event_id
        key = (event.session_id, event.question, event.answer, event.user_id is None, voter)
        current = latest.get(key)
        if current is None or (event.occurred_at, event.event_id) > (current.occurred_at, current.event_id):
            latest[key] = event
    return {event.event_id for event in latest.values()}


@dataclass(frozen=True)
class Conversation:
    session_id: str
    question: str
    answer: str


def conversations(rng: random.Random, sessions: int) -> list[Conversation]:
    """Three answers per session; two of them give the same answer text to different questions."""
    found: list[Conversation] = []
    for s in range(sessions):
        session_id = f"session-{s}-{rng.randrange(10**6)}"
        found += [
            Conversation(session_id, f"What is the refund window for order {s}?", f"{14 + s} days."),
            Conversation(session_id, "Can I pay by invoice?", "I don't know."),
            Conversation(session_id, "Is there a student discount?", "I don't know."),
        ]
    return found


def voting_scenario(count: int, seed: int = 7) -> list[Feedback]:
    """`count` votes by 15 users and anonymous ones on 30 answers, many users voting more than once,
    with times that tie and that run against the order of the list."""
    rng = random.Random(seed)
    answers = conversations(rng, 10)
    users = [f"user-{n}" for n in range(15)]
    events: list[Feedback] = []
    while len(events) < count:
        answer = rng.choice(answers)
        user = None if rng.random() < 0.15 else rng.choice(users)
        rating = Rating.DOWN if rng.random() < 0.45 else Rating.UP
        comment = rng.choice([None, None, "   ", "Wrong: the window is 30 days.", "Not helpful"])
        occurred_at = T0 + timedelta(seconds=rng.randrange(40))
        event = feedback(
            event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            occurred_at=occurred_at,
            session_id=answer.session_id,
            question=answer.question,
            answer=answer.answer,
            rating=rating,
            comment=comment,
            user_id=user,
            prompt_version=rng.choice([None, "p-7"]),
        )
        events.append(event)
        if user is not None and rng.random() < 0.2:
            # The same user changes their mind at the very same second.
            flipped = Rating.UP if rating is Rating.DOWN else Rating.DOWN
            events.append(
                event.model_copy(
                    update={"event_id": uuid.UUID(int=rng.getrandbits(128), version=4), "rating": flipped}
                )
            )
    return events[:count]
