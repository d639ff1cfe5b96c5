"""The codec's fast path writes byte for byte what the reference path (`to_avro_datum` + fastavro)
writes, for every event type, for outputs that embed an event already written (spliced), and for
values the fast writer hands back to the reference path.

The band-router's fast path (JSON read by msgspec, or Avro of the current schema read by fastavro
and msgspec, into plain structs, routed on plain values, the plain outputs written by the same
writer) gives every message exactly what the reference path (Pydantic, `route`, fastavro) gives
it: the same output bytes for every routable prediction, and for every changed or broken one the
same outputs or the same dead-letter reason and message."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.avro_changes import AVRO, avro_headers, changed_avro
from tests.support.fast_path import MAX_OUTPUT_BYTES, handled_both_ways, produced_or_dead_letter
from tests.support.json_changes import TIMESTAMPS, changed_json, json_values
from tests.support.messages import StoredMessage
from workers.band_router.policy import Policy, load_policy, parse_policy
from workers.band_router.routing import route, route_plain
from workers.contracts import (
    EVENT_TYPES,
    Decision,
    EncodeError,
    Event,
    EventCodec,
    Item,
    ModelInfo,
    Prediction,
    ReviewTask,
    TaskKind,
    to_json,
)
from workers.contracts.plain import PlainPrediction
from workers.errors import RejectedEvent
from workers.runtime.batch import BatchHandler, MessageResult
from workers.runtime.worker import FastPath, WorkerSpec

from .strategies import records

by_name = pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
POLICY = load_policy(Path(__file__).resolve().parents[2] / "deploy" / "policies" / "bands.toml")
JSON = [("content-type", b"application/json")]


@pytest.fixture(scope="module", params=[True, False], ids=["compiled-writer", "python-writer"])
def fast(request: pytest.FixtureRequest) -> EventCodec:
    """The fast path with each writer: the compiled one (where it is built) and the Python one."""
    return EventCodec(compiled_writer=request.param)


@pytest.fixture(scope="module")
def reference() -> EventCodec:
    return EventCodec(fast=False)


def outcome(codec: EventCodec, event: Event) -> bytes | tuple[str, str]:
    try:
        return codec.encode(event)
    except EncodeError as error:
        return ("EncodeError", str(error))


@by_name
@given(data=st.data())
def test_every_event_is_written_as_the_reference_writes_it(
    fast: EventCodec, reference: EventCodec, event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(records(event_type))

    assert fast.encode(event) == reference.encode(event)


@settings(max_examples=300)
@given(prediction=records(Prediction), audit_rate=st.sampled_from([0.0, 1.0]))
def test_band_router_outputs_from_json_input_are_the_reference_bytes(
    fast: EventCodec, reference: EventCodec, prediction: Prediction, audit_rate: float
) -> None:
    """Decoded as the runtime decodes it, routed, written: a decision and its audit task embed the
    same prediction, written once and spliced into the second."""
    decoded = fast.decode(to_json(prediction), JSON, Prediction)
    try:
        outputs = route(decoded, POLICY, datetime(2026, 3, 1, tzinfo=UTC))
    except RejectedEvent:
        return
    for output in outputs:
        assert fast.encode(output) == reference.encode(output)


@given(prediction=records(Prediction), data=st.data())
def test_an_event_written_alone_then_embedded_twice_is_spliced_as_written(
    fast: EventCodec, reference: EventCodec, prediction: Prediction, data: st.DataObject
) -> None:
    decision = data.draw(records(Decision, event_id=st.just(prediction.event_id), source=st.just(prediction)))
    task = data.draw(
        records(
            ReviewTask,
            kind=st.just(TaskKind.MODERATION),
            task_id=st.just(prediction.event_id),
            source=st.just(prediction),
        )
    )
    fast.decode(to_json(prediction), JSON, Prediction)  # a new message: nothing remembered

    assert fast.encode(prediction) == reference.encode(prediction)
    assert fast.encode(decision) == reference.encode(decision)
    assert fast.encode(task) == reference.encode(task)
    assert fast.encode(decision) == reference.encode(decision)


def unwritable_predictions() -> list[Prediction]:
    """Events the fast writer hands to the reference path (built unvalidated, as a buggy handler might)."""
    good = Prediction(
        event_id="6f1c2b8e-4a7d-4a53-9d0e-1f2a3b4c5d6e",
        occurred_at=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        source="s",
        task="moderation",
        model=ModelInfo(name="m", version="1"),
        item=Item(id="i", content_type="text/plain"),
        scores={"toxic": 0.5},
    )
    fields = dict(good)
    return [
        Prediction.model_construct(**{**fields, "source": "lone surrogate \ud800"}),
        Prediction.model_construct(**{**fields, "occurred_at": datetime(2025, 3, 1, 12, 30)}),
        Prediction.model_construct(**{**fields, "scores": {"toxic": "0.5"}}),
        Prediction.model_construct(**{**fields, "scores": {"toxic": True}}),
        Prediction.model_construct(**{**fields, "event_id": 42}),
        Prediction.model_construct(**{**fields, "trace_id": 42}),
        Prediction.model_construct(**{**fields, "item": {"id": "i", "content_type": "text/plain"}}),
    ]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("event", unwritable_predictions(), ids=lambda e: repr(e)[:60])
def test_what_the_fast_writer_cannot_write_gets_the_reference_result(
    fast: EventCodec, reference: EventCodec, event: Prediction
) -> None:
    assert outcome(fast, event) == outcome(reference, event)


def test_a_fast_encode_is_faster_than_the_reference() -> None:
    """Not a timed assertion: the fast writer is in use (it wrote without the reference path)."""
    codec = EventCodec()
    prediction = unwritable_predictions()[0].model_copy(update={"source": "s"})
    codec.encode(prediction)

    assert codec._writers[Prediction] is not None


# -- the band-router's fast path: JSON read by msgspec into plain structs, routed on plain values ---

NOW = datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)
AUDIT_ALL = parse_policy(
    b"""
version = "audit-all"
[default]
low = 0.3
high = 0.7
audit_rate = 1.0
[default.labels.spam]
low = 0.5
high = 0.5
"""
)
POLICIES = {"repository": POLICY, "audit-all": AUDIT_ALL}
LABELS = st.sampled_from(["toxic", "ok", "spam", "self_harm", "cancel_subscription"]) | st.text(max_size=4)
SCORES = st.floats(0.0, 1.0) | st.sampled_from([0.0, 0.4, 0.5, 0.8, 1.0, -0.0])
MODELS = st.builds(
    ModelInfo,
    name=st.sampled_from(["toxicity-bert", "intent-clf"]) | st.text(max_size=4),
    version=st.sampled_from(["3.0.0", "2.3.1"]) | st.text(max_size=3),
)
routable_predictions = st.builds(
    lambda prediction, model: prediction.model_copy(update={"model": model}),
    records(
        Prediction,
        task=st.sampled_from(["moderation", "intent"]) | st.text(max_size=4),
        scores=st.dictionaries(LABELS, SCORES, min_size=1, max_size=4),
    ),
    MODELS,
)


def consumed(value: bytes, headers: list[tuple[str, bytes]]) -> StoredMessage:
    """A consumed prediction, as the runtime reads it."""
    return StoredMessage(
        value, headers, key=b"k", topic="predictions", offset=7, timestamp_ms=1_772_357_415_000
    )


def band_router_spec(
    policy: Policy, fast_handler: Callable[[PlainPrediction], Any] | None = None
) -> WorkerSpec:
    """The band-router's spec (`band_router.worker`) with a fixed clock and policy."""

    def plain(prediction: PlainPrediction) -> Any:
        return route_plain(prediction, policy, NOW)

    return WorkerSpec(
        name="band-router",
        input_topic="predictions",
        input_types=(Prediction,),
        handler=lambda prediction, _origin: route(prediction, policy, NOW),
        outputs={Decision: "decisions", ReviewTask: "review-tasks"},
        fast_path=FastPath(PlainPrediction, fast_handler or plain),
    )


Outcome = tuple[str, Any]


outcome_of = produced_or_dead_letter


def both_paths(
    value: bytes,
    policy: Policy = POLICY,
    headers: list[tuple[str, bytes]] | None = None,
    **spec: Any,
) -> tuple[MessageResult, MessageResult]:
    """The message handled by the runtime with the fast path, and by the reference path alone."""
    message: Any = consumed(value, JSON if headers is None else headers)
    return handled_both_ways(band_router_spec(policy, **spec), message)


def took_fast_path(result: MessageResult) -> bool:
    return result.rejection is None and result.processed is None


@settings(max_examples=400)
@given(prediction=routable_predictions, policy=st.sampled_from(sorted(POLICIES)))
def test_the_fast_path_produces_the_reference_bytes_for_every_routable_prediction(
    prediction: Prediction, policy: str
) -> None:
    fast, reference = both_paths(to_json(prediction), POLICIES[policy])

    assert outcome_of(fast) == outcome_of(reference)
    assert took_fast_path(fast) == (reference.rejection is None)
    assert fast.event_time == reference.event_time


FIELD_PATHS = [
    ("event_id",),
    ("occurred_at",),
    ("source",),
    ("task",),
    ("model",),
    ("model", "name"),
    ("model", "version"),
    ("item",),
    ("item", "id"),
    ("item", "content_type"),
    ("item", "text"),
    ("item", "uri"),
    ("item", "metadata"),
    ("scores",),
    ("trace_id",),
    ("ground_truth",),
]


def changed_score(draw: st.DrawFn, document: dict[str, Any]) -> None:
    label = draw(st.sampled_from(sorted(document["scores"])))
    document["scores"][label] = draw(json_values() | st.sampled_from([1.5, -0.1, 1e400, -1e400]))


@st.composite
def mutated_json(draw: st.DrawFn) -> bytes:
    """A prediction's JSON with one thing changed (`changed_json`), or one of its scores."""
    document = json.loads(to_json(draw(routable_predictions)))
    duplicate = '"task": "moderation", "task": "intent"'
    return changed_json(draw, document, FIELD_PATHS, duplicate, {"score": changed_score})


@settings(max_examples=600)
@given(value=mutated_json(), policy=st.sampled_from(sorted(POLICIES)))
def test_a_changed_prediction_gets_the_reference_outputs_or_dead_letter_reason(
    value: bytes, policy: str
) -> None:
    fast, reference = both_paths(value, POLICIES[policy])

    assert outcome_of(fast) == outcome_of(reference)


def sample_prediction_json() -> bytes:
    document = json.loads(to_json(unwritable_predictions()[0].model_copy(update={"source": "s"})))
    document["scores"] = {"toxic": 0.95, "ok": 0.05}
    return json.dumps(document).encode()


@pytest.mark.parametrize("timestamp", TIMESTAMPS)
def test_a_timestamp_in_any_form_is_read_as_pydantic_reads_it(timestamp: str) -> None:
    document = json.loads(sample_prediction_json())
    document["occurred_at"] = timestamp
    fast, reference = both_paths(json.dumps(document).encode())

    assert outcome_of(fast) == outcome_of(reference)
    if re.search(r"[.][0-9]{7}", timestamp):
        assert not took_fast_path(fast)  # msgspec would round the fraction: Pydantic reads it


def test_the_fast_path_is_taken_for_a_plain_prediction() -> None:
    fast, reference = both_paths(sample_prediction_json(), AUDIT_ALL)

    assert took_fast_path(fast)
    assert outcome_of(fast) == outcome_of(reference)
    assert [e.topic for e in fast.encoded] == ["decisions", "review-tasks"]


def test_a_fast_handler_that_declines_or_fails_leaves_the_message_to_the_handler() -> None:
    def fails(_prediction: PlainPrediction) -> Any:
        raise RuntimeError("a bug of the fast path")

    for declining in (lambda _prediction: None, fails):
        fast, reference = both_paths(sample_prediction_json(), fast_handler=declining)

        assert not took_fast_path(fast)
        assert outcome_of(fast) == outcome_of(reference)


def test_an_output_too_large_is_the_reference_dead_letter() -> None:
    message: Any = consumed(sample_prediction_json(), JSON)
    fast, reference = handled_both_ways(band_router_spec(POLICY), message, max_output_bytes=100)

    assert fast.rejection is not None and fast.rejection.reason == "output_too_large"
    assert outcome_of(fast) == outcome_of(reference)


def test_avro_of_the_current_schema_takes_the_fast_path_to_the_reference_bytes(
    reference: EventCodec,
) -> None:
    prediction = reference.decode(sample_prediction_json(), JSON, Prediction)
    fast, expected = both_paths(reference.encode(prediction), AUDIT_ALL, headers=AVRO)

    assert took_fast_path(fast)
    assert outcome_of(fast) == outcome_of(expected)
    assert [e.topic for e in fast.encoded] == ["decisions", "review-tasks"]


@settings(max_examples=200)
@given(prediction=routable_predictions, policy=st.sampled_from(sorted(POLICIES)), headers=avro_headers)
def test_the_fast_path_produces_the_reference_bytes_for_every_routable_prediction_in_avro(
    reference: EventCodec, prediction: Prediction, policy: str, headers: list[tuple[str, bytes]]
) -> None:
    fast, expected = both_paths(reference.encode(prediction), POLICIES[policy], headers)

    assert outcome_of(fast) == outcome_of(expected)
    assert took_fast_path(fast) == (expected.rejection is None)
    assert fast.event_time == expected.event_time


@settings(max_examples=400)
@given(
    value=changed_avro(routable_predictions), policy=st.sampled_from(sorted(POLICIES)), headers=avro_headers
)
def test_a_changed_prediction_in_avro_gets_the_reference_outputs_or_dead_letter_reason(
    value: bytes, policy: str, headers: list[tuple[str, bytes]]
) -> None:
    fast, reference = both_paths(value, POLICIES[policy], headers)

    assert outcome_of(fast) == outcome_of(reference)


def test_every_message_the_fast_path_leaves_is_counted() -> None:
    """`hitl_fast_path_fallbacks_total` counts them: a fast handler that always failed would
    otherwise only show as a slow worker."""
    handler = BatchHandler(band_router_spec(POLICY), EventCodec(), MAX_OUTPUT_BYTES)
    handler(consumed(sample_prediction_json(), JSON))
    assert handler.fallbacks == 0

    handler(consumed(b'{"event_id": "not a prediction"}', JSON))
    handler(consumed(sample_prediction_json().replace(b'"source"', b'"origin"'), JSON))
    handler(consumed(sample_prediction_json(), JSON))

    assert handler.fallbacks == 2
