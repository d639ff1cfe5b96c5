"""A worker for the runtime's own tests: it relays each prediction to an output topic, keyed by event id.

Its topics come from HITL_TEST_RELAY_INPUT and HITL_TEST_RELAY_OUTPUT, so a test can run it as a
process with `hitl-workers run tests.support.relay:relay`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from workers.config import Settings
from workers.contracts import Prediction
from workers.errors import RejectedEvent
from workers.runtime.worker import Origin, WorkerSpec


def relay_spec(input_topic: str, output_topic: str, name: str = "relay") -> WorkerSpec:
    def handle(event: Prediction, _origin: Origin) -> Iterable[Prediction]:
        if event.task == "reject-me":
            raise RejectedEvent("unroutable_task", f"no route for task {event.task!r}")
        yield event

    return WorkerSpec(
        name=name,
        input_topic=input_topic,
        input_types=(Prediction,),
        handler=handle,
        outputs={Prediction: output_topic},
    )


def relay(_settings: Settings) -> WorkerSpec:
    return relay_spec(os.environ["HITL_TEST_RELAY_INPUT"], os.environ["HITL_TEST_RELAY_OUTPUT"])
