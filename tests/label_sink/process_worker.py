"""The label-sink as a process, on a test's own schema: HITL_TEST_LABEL_SINK_SCHEMA names it.

Run with `hitl-workers run tests.label_sink.process_worker:label_sink_in_test_schema`; the topics
come from the usual settings (HITL_TOPICS__REVIEW_RESOLVED, HITL_TOPICS__TRAINING_EXAMPLES).
"""

from __future__ import annotations

import os

from workers.config import Settings
from workers.label_sink.worker import label_sink
from workers.runtime.worker import WorkerSpec


def label_sink_in_test_schema(settings: Settings) -> WorkerSpec:
    return label_sink(settings, schema=os.environ["HITL_TEST_LABEL_SINK_SCHEMA"])
