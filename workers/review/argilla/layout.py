"""Which Argilla dataset a review task goes to, and what reviewers see there: fields, questions, metadata.

One dataset per group of tasks (`workers.review.grouping`: per kind, and per label set or schema):
a label question's options cannot change once the dataset exists, so a task whose scores name a
label the dataset lacks would be refused. An extraction schema's versions share a dataset; the
version is metadata.

The names of fields and metadata here are what `records` writes and reads; the questions are the
review package's (`answers`).
Settings apply when a dataset is created: a later change of `min_submitted` (Argilla fixes the task
distribution once a dataset has responses) or of these definitions needs a new dataset prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import argilla as rg

from workers.config import ArgillaBridgeSettings
from workers.contracts import RagFault, RagVerdict, ReviewTask, TaskKind
from workers.review.answers import CORRECTED_ANSWER, CORRECTED_JSON, FAULT, LABEL, NOTE, VERDICT
from workers.review.grouping import task_group

# Fields
TEXT = "text"
IMAGE = "image"
QUESTION = "question"
ANSWER = "answer"
CONTEXTS = "contexts"
SOURCE_TEXT = "source_text"
VALIDATION_ERRORS = "validation_errors"
REVIEW_FEEDBACK = "review_feedback"

# Questions: the review package's names, which the answers are read by.

# Metadata properties, filterable and sortable in the UI
MODEL = "model"
MODEL_VERSION = "model_version"
CONFIDENCE = "confidence"
REASON = "reason"
PRIORITY = "priority"
RATING = "rating"
SCHEMA_VERSION = "schema_version"
REVIEW_STATE = "review_state"
"""`awaiting` until the collector has emitted the record's resolution, then `emitted`."""

# Extra metadata (no property, so not indexed nor shown as a filter): the task as JSON, from which
# the collector rebuilds the resolution's source event.
TASK_JSON = "_hitl_task"

AWAITING = "awaiting"
EMITTED = "emitted"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as the bridge wants it: its name and the settings it is created with."""

    name: str
    settings: rg.Settings
    image: bool = False


def dataset_spec_for(task: ReviewTask, bridge: ArgillaBridgeSettings) -> DatasetSpec:
    min_submitted = bridge.min_submitted.get(task.kind.value, 1)
    group = task_group(task, bridge.dataset_prefix)
    if group.kind is TaskKind.MODERATION:
        return DatasetSpec(
            group.name, moderation_settings(list(group.labels), group.image, min_submitted), group.image
        )
    if group.kind is TaskKind.EXTRACTION:
        assert group.schema_name is not None
        return DatasetSpec(group.name, extraction_settings(group.schema_name, min_submitted))
    return DatasetSpec(group.name, rag_settings(min_submitted))


def _common_metadata() -> list[
    rg.TermsMetadataProperty | rg.FloatMetadataProperty | rg.IntegerMetadataProperty
]:
    return [
        rg.TermsMetadataProperty(MODEL, title="Model"),
        rg.TermsMetadataProperty(MODEL_VERSION, title="Model version"),
        # No fixed options: a value outside them would make Argilla refuse the record.
        rg.TermsMetadataProperty(REASON, title="Why it is here"),
        rg.IntegerMetadataProperty(PRIORITY, title="Priority"),
        rg.TermsMetadataProperty(
            REVIEW_STATE, options=[AWAITING, EMITTED], title="Resolution", visible_for_annotators=False
        ),
    ]


MODERATION_GUIDELINES = """\
# Moderation review

A model scored this item and was not sure enough to decide alone (or the item was drawn as an
audit sample of the model's automatic decisions).

1. Read the item.
2. Pick the label that is right for it. The model's choice is pre-selected, with its confidence;
   change it whenever it is wrong.
3. **Submit**. If the item cannot be judged (empty, broken image, not in a language you read),
   **Discard** it.

Use the metadata filters to work on one model, one reason or the highest priority first.
"""


def moderation_settings(labels: list[str], image: bool, min_submitted: int) -> rg.Settings:
    fields: list[rg.TextField | rg.ImageField] = (
        [rg.ImageField(IMAGE, title="Image"), rg.TextField(TEXT, title="Text", required=False)]
        if image
        else [rg.TextField(TEXT, title="Text")]
    )
    return rg.Settings(
        guidelines=MODERATION_GUIDELINES,
        fields=fields,
        questions=[rg.LabelQuestion(LABEL, labels=labels, title="Which label is right?")],
        metadata=[
            *_common_metadata(),
            rg.FloatMetadataProperty(CONFIDENCE, min=0, max=1, title="Confidence"),
        ],
        allow_extra_metadata=True,
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


RAG_GUIDELINES = """\
# RAG answer review

A user rated this answer (most often a thumbs-down). Judge the answer against the question and
the retrieved contexts.

- **Is the answer correct?** `correct`, `partially_correct` or `incorrect`.
- **Where is the fault?** `retrieval` when the contexts do not hold what is needed, `generation`
  when they do but the answer gets it wrong, `both`, `other`, or `none` for a correct answer.
- **Corrected answer**: the answer the assistant should have given (optional).
- **Note**: anything else worth knowing (optional).

Discard the record if it cannot be judged.
"""


def rag_settings(min_submitted: int) -> rg.Settings:
    return rg.Settings(
        guidelines=RAG_GUIDELINES,
        fields=[
            rg.TextField(QUESTION, title="Question"),
            rg.TextField(ANSWER, title="Answer", use_markdown=True),
            rg.TextField(CONTEXTS, title="Retrieved contexts", use_markdown=True, required=False),
        ],
        questions=[
            rg.LabelQuestion(VERDICT, labels=[v.value for v in RagVerdict], title="Is the answer correct?"),
            rg.LabelQuestion(
                FAULT, labels=[f.value for f in RagFault], title="Where is the fault?", required=False
            ),
            rg.TextQuestion(CORRECTED_ANSWER, title="Corrected answer", required=False, use_markdown=True),
            rg.TextQuestion(NOTE, title="Note", required=False),
        ],
        metadata=[
            *_common_metadata(),
            rg.TermsMetadataProperty(RATING, title="Rating"),
        ],
        allow_extra_metadata=True,
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


EXTRACTION_GUIDELINES = """\
# Extraction correction: {schema}

An LLM read the source text and should have returned JSON matching the `{schema}` schema. Its
output failed validation; the errors are listed beside the text.

1. The answer box is pre-filled with the model's output. Fix it so that it is **valid JSON**
   matching the schema and faithful to the source text.
2. **Submit**. A correction that still fails the schema comes back to you, with the error shown
   under *Review feedback*.
3. Discard the record if the source text holds nothing to extract.
"""


def extraction_settings(schema_name: str, min_submitted: int) -> rg.Settings:
    return rg.Settings(
        guidelines=EXTRACTION_GUIDELINES.format(schema=schema_name),
        fields=[
            rg.TextField(SOURCE_TEXT, title="Source text"),
            rg.TextField(VALIDATION_ERRORS, title="Validation errors", use_markdown=True, required=False),
            rg.TextField(REVIEW_FEEDBACK, title="Review feedback", use_markdown=True, required=False),
        ],
        questions=[
            rg.TextQuestion(
                CORRECTED_JSON,
                title="Corrected JSON",
                description=f"Valid JSON for the {schema_name} schema",
            )
        ],
        metadata=[
            *_common_metadata(),
            rg.TermsMetadataProperty(SCHEMA_VERSION, title="Schema version"),
        ],
        allow_extra_metadata=True,
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )
