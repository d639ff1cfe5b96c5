"""The band-router worker: `hitl.predictions` → `hitl.decisions` and `hitl.review.tasks`.

Both outputs are keyed by the prediction's event id. What goes where is `routing.route`'s job;
the policy comes from `settings.band_router.policy_file` and is reloaded on change or SIGHUP.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from workers.band_router.reload import PolicyHolder
from workers.band_router.routing import route
from workers.config import Settings
from workers.contracts import Decision, Event, Prediction
from workers.errors import RejectedEvent
from workers.runtime.worker import Origin, Output, WorkerSpec

NAME = "band-router"


def band_router(settings: Settings) -> WorkerSpec:
    """The worker `hitl-workers run band-router` runs; raises PolicyError if the policy is invalid."""
    holder = PolicyHolder(settings.band_router.policy_file, settings.band_router.reload_check_seconds)
    holder.install_sighup_handler()
    return band_router_spec(settings, holder)


def band_router_spec(settings: Settings, holder: PolicyHolder) -> WorkerSpec:
    decisions, review_tasks = settings.topics.decisions, settings.topics.review_tasks

    def handle(event: Event, _origin: Origin) -> Iterator[Output]:
        if not isinstance(event, Prediction):
            raise RejectedEvent("wrong_event_type", f"expected a Prediction, got {type(event).__name__}")
        key = str(event.event_id)
        for output in route(event, holder.current(), datetime.now(UTC)):
            yield Output(decisions if isinstance(output, Decision) else review_tasks, key, output)

    return WorkerSpec(
        name=NAME,
        input_topic=settings.topics.predictions,
        input_types=(Prediction,),
        handler=handle,
        output_topics=(decisions, review_tasks),
    )
