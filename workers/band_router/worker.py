"""The band-router worker: `hitl.predictions` → `hitl.decisions` and `hitl.review.tasks`.

Both outputs are keyed by the prediction's event id (the runtime's default). What goes where is
`routing.route`'s job, and `routing.route_plain`'s on the fast path (JSON predictions read by
msgspec, no Pydantic models); the policy comes from `settings.band_router.policy_file` and is
reloaded on change or SIGHUP.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from workers.band_router.reload import PolicyHolder
from workers.band_router.routing import route, route_plain
from workers.config import Settings
from workers.contracts import Decision, Prediction, ReviewTask
from workers.contracts.plain import PlainDecision, PlainPrediction, PlainReviewTask
from workers.runtime.worker import FastPath, Origin, WorkerSpec

NAME = "band-router"


def band_router(settings: Settings, holder: PolicyHolder | None = None) -> WorkerSpec:
    """The worker `hitl-workers run band-router` runs; raises PolicyError if the policy is invalid.

    Without a `holder`, the policy file of the settings is loaded and reloaded on SIGHUP too.
    """
    if holder is None:
        holder = PolicyHolder(settings.band_router.policy_file, settings.band_router.reload_check_seconds)
        holder.install_sighup_handler()
    policy = holder

    def handle(prediction: Prediction, _origin: Origin) -> Sequence[Decision | ReviewTask]:
        return route(prediction, policy.current(), datetime.now(UTC))

    def handle_plain(prediction: PlainPrediction) -> Sequence[PlainDecision | PlainReviewTask]:
        return route_plain(prediction, policy.current(), datetime.now(UTC))

    return WorkerSpec(
        name=NAME,
        input_topic=settings.topics.predictions,
        input_types=(Prediction,),
        handler=handle,
        outputs={Decision: settings.topics.decisions, ReviewTask: settings.topics.review_tasks},
        fast_path=FastPath(PlainPrediction, handle_plain),
    )
