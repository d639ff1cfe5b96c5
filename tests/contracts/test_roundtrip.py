"""Every event survives Avro and JSON unchanged."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.contracts import EVENT_TYPES, Event, EventCodec, to_json

from .strategies import records

by_name = pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)


@by_name
@given(data=st.data())
def test_avro_round_trip(codec: EventCodec, event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(records(event_type))

    assert codec.decode(codec.encode(event), None, event_type) == event


@by_name
@given(data=st.data())
def test_json_round_trip(codec: EventCodec, event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(records(event_type))

    assert codec.decode(to_json(event), [("content-type", b"application/json")], event_type) == event


@given(event=st.one_of([records(t) for t in EVENT_TYPES]))
def test_decoding_into_any_of_several_types_returns_the_one_written(codec: EventCodec, event: Event) -> None:
    assert codec.decode(codec.encode(event), None, EVENT_TYPES) == event
    assert codec.decode(to_json(event), None, EVENT_TYPES) == event
