"""Hypothesis strategies for every event model, derived from the models' own type hints.

Field constraints (bounds, minimum sizes, JSON text) are read from the annotations, so new fields
are covered without touching this file; only cross-field rules need a strategy of their own.
"""

import json
import types
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from uuid import UUID

import annotated_types
from hypothesis import strategies as st
from pydantic import AfterValidator, AwareDatetime
from pydantic.fields import FieldInfo

from workers.contracts import (
    OUTCOME_TYPE_BY_KIND,
    SOURCE_TYPE_BY_KIND,
    Band,
    Decision,
    Extraction,
    Prediction,
    Record,
    ResolutionStatus,
    ReviewResolution,
    ReviewTask,
    TaskKind,
    ValidExtraction,
)
from workers.contracts.base import require_json_text

R = TypeVar("R", bound=Record)

MAX_COLLECTION_SIZE = 3

utc_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware_datetimes = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC) | utc_offsets
)
json_texts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3),
    max_leaves=6,
).map(json.dumps)


def records(model: type[R], **fixed: st.SearchStrategy[Any]) -> st.SearchStrategy[R]:
    """Instances of `model`; `fixed` replaces the strategy of the named fields."""
    special = _SPECIAL.get(model)
    if special is not None and not fixed:
        return special
    fields = {
        name: fixed[name] if name in fixed else _for_annotation(field.annotation, field.metadata)
        for name, field in model.model_fields.items()
    }
    return st.builds(model, **fields)


def _flatten(metadata: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in metadata:
        flat.extend(_flatten(item.metadata) if isinstance(item, FieldInfo) else [item])
    return flat


def _bound(metadata: list[Any], kind: type[Any], attribute: str) -> Any:
    return next((getattr(m, attribute) for m in metadata if isinstance(m, kind)), None)


def _for_annotation(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:  # noqa: C901
    metadata = _flatten(metadata)
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _for_annotation(args[0], [*metadata, *args[1:]])
    if origin in (Union, types.UnionType):
        return st.one_of([_for_annotation(arg, metadata) for arg in args])
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return records(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from(annotation)
    if origin is dict:
        return st.dictionaries(
            _for_annotation(args[0], []),
            _for_annotation(args[1], []),
            min_size=_bound(metadata, annotated_types.MinLen, "min_length") or 0,
            max_size=MAX_COLLECTION_SIZE,
        )
    if origin is tuple:
        return st.lists(_for_annotation(args[0], []), max_size=MAX_COLLECTION_SIZE).map(tuple)
    if annotation is str:
        is_json = any(isinstance(m, AfterValidator) and m.func is require_json_text for m in metadata)
        return json_texts if is_json else st.text(max_size=20)
    if annotation is int:
        low, high = _bound(metadata, annotated_types.Ge, "ge"), _bound(metadata, annotated_types.Le, "le")
        return st.integers(min_value=low, max_value=high)
    if annotation is float:
        low, high = _bound(metadata, annotated_types.Ge, "ge"), _bound(metadata, annotated_types.Le, "le")
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if annotation is UUID:
        return st.uuids()
    if annotation in (datetime, AwareDatetime):
        return aware_datetimes
    raise NotImplementedError(f"no strategy for {annotation!r}")


@st.composite
def _bands(draw: st.DrawFn) -> Band:
    probability = st.floats(min_value=0.0, max_value=1.0)
    low, high = sorted((draw(probability), draw(probability)))
    return Band(low=low, high=high)


@st.composite
def _decisions(draw: st.DrawFn) -> Decision:
    source = draw(records(Prediction))
    return draw(records(Decision, event_id=st.just(source.event_id), source=st.just(source)))


@st.composite
def _review_tasks(draw: st.DrawFn) -> ReviewTask:
    kind = draw(st.sampled_from(TaskKind))
    source = draw(records(SOURCE_TYPE_BY_KIND[kind]))
    return draw(
        records(ReviewTask, kind=st.just(kind), task_id=st.just(source.event_id), source=st.just(source))
    )


@st.composite
def _review_resolutions(draw: st.DrawFn) -> ReviewResolution:
    kind = draw(st.sampled_from(TaskKind))
    status = draw(st.sampled_from(ResolutionStatus))
    source = draw(records(SOURCE_TYPE_BY_KIND[kind]))
    outcome = st.none() if status is ResolutionStatus.DISCARDED else records(OUTCOME_TYPE_BY_KIND[kind])
    return draw(
        records(
            ReviewResolution,
            kind=st.just(kind),
            status=st.just(status),
            task_id=st.just(source.event_id),
            source=st.just(source),
            outcome=outcome,
        )
    )


@st.composite
def _valid_extractions(draw: st.DrawFn) -> ValidExtraction:
    source = draw(records(Extraction))
    return draw(
        records(
            ValidExtraction,
            event_id=st.just(source.event_id),
            occurred_at=st.just(source.occurred_at),
            schema_name=st.just(source.schema_name),
            schema_version=st.just(source.schema_version),
            source=st.just(source),
        )
    )


_SPECIAL: dict[type[Record], st.SearchStrategy[Any]] = {
    Band: _bands(),
    Decision: _decisions(),
    ReviewTask: _review_tasks(),
    ReviewResolution: _review_resolutions(),
    ValidExtraction: _valid_extractions(),
}
