"""Which Label Studio project a review task goes to, and what annotators see there: its label config.

One project per group of tasks (`workers.review.grouping`: per kind, and per label set or schema),
titled by the group's name. The control tags are named after the review package's questions
(`answers`), so an annotation's result reads back as the answer to each question by its name.

The data keys here are what `tasks` writes. A key named `source` would be rendered by Label
Studio as the whole task JSON, so none is called that. `maximum_annotations` (the overlap) is
the task kind's answers needed, set when the project is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from workers.contracts import RagFault, RagVerdict, ReviewTask, TaskKind
from workers.review.answers import CORRECTED_ANSWER, CORRECTED_JSON, FAULT, LABEL, NOTE, VERDICT
from workers.review.grouping import TaskGroup, task_group

# Data keys
TASK_ID = "task_id"
TEXT = "text"
IMAGE = "image"
DETAILS = "details"
QUESTION = "question"
ANSWER = "answer"
CONTEXTS = "contexts"
SOURCE_TEXT = "source_text"
VALIDATION_ERRORS = "validation_errors"
REVIEW_FEEDBACK = "review_feedback"


@dataclass(frozen=True)
class ProjectSpec:
    title: str
    label_config: str
    description: str
    maximum_annotations: int
    group: TaskGroup


def project_spec_for(task: ReviewTask, prefix: str, min_submitted: dict[str, int]) -> ProjectSpec:
    group = task_group(task, prefix)
    needed = min_submitted.get(group.kind.value, 1)
    if group.kind is TaskKind.MODERATION:
        return ProjectSpec(
            group.name, moderation_config(group.labels, group.image), MODERATION_GUIDE, needed, group
        )
    if group.kind is TaskKind.EXTRACTION:
        schema = group.schema_name or ""
        return ProjectSpec(
            group.name, extraction_config(), EXTRACTION_GUIDE.format(schema=schema), needed, group
        )
    return ProjectSpec(group.name, rag_config(), RAG_GUIDE, needed, group)


def _text(name: str, title: str | None = None) -> str:
    header = f'  <Header value={quoteattr(title)} size="5"/>\n' if title else ""
    return f"{header}  <Text name={quoteattr(name)} value={quoteattr('$' + name)}/>\n"


def _choices(name: str, to_name: str, values: tuple[str, ...], title: str, required: bool) -> str:
    options = "".join(f"    <Choice value={quoteattr(value)}/>\n" for value in values)
    return (
        f'  <Header value={quoteattr(title)} size="5"/>\n'
        f'  <Choices name={quoteattr(name)} toName={quoteattr(to_name)} choice="single" '
        f'showInLine="true" required="{"true" if required else "false"}">\n{options}  </Choices>\n'
    )


def _text_area(name: str, to_name: str, title: str, rows: int, required: bool) -> str:
    return (
        f'  <Header value={quoteattr(title)} size="5"/>\n'
        f'  <TextArea name={quoteattr(name)} toName={quoteattr(to_name)} editable="true" '
        f'maxSubmissions="1" rows="{rows}" required="{"true" if required else "false"}"/>\n'
    )


def _view(*parts: str) -> str:
    return "<View>\n" + "".join(parts) + "</View>\n"


def moderation_config(labels: tuple[str, ...], image: bool) -> str:
    item = (
        f"  <Image name={quoteattr(IMAGE)} value={quoteattr('$' + IMAGE)}/>\n" + _text(TEXT)
        if image
        else _text(TEXT, "Item")
    )
    return _view(
        item,
        _text(DETAILS),
        _choices(LABEL, IMAGE if image else TEXT, labels, "Which label is right?", required=True),
        _text(REVIEW_FEEDBACK),
    )


def rag_config() -> str:
    return _view(
        _text(QUESTION, "Question"),
        _text(ANSWER, "Answer"),
        _text(CONTEXTS, "Retrieved contexts"),
        _text(DETAILS),
        _choices(
            VERDICT, ANSWER, tuple(v.value for v in RagVerdict), "Is the answer correct?", required=True
        ),
        _choices(FAULT, ANSWER, tuple(f.value for f in RagFault), "Where is the fault?", required=False),
        _text_area(CORRECTED_ANSWER, ANSWER, "Corrected answer (optional)", rows=4, required=False),
        _text_area(NOTE, ANSWER, "Note (optional)", rows=2, required=False),
        _text(REVIEW_FEEDBACK),
    )


def extraction_config() -> str:
    return _view(
        _text(SOURCE_TEXT, "Source text"),
        _text(VALIDATION_ERRORS, "Validation errors"),
        _text(DETAILS),
        _text(REVIEW_FEEDBACK),
        _text_area(CORRECTED_JSON, SOURCE_TEXT, "Corrected JSON", rows=12, required=True),
    )


MODERATION_GUIDE = (
    "A model scored this item and was not sure enough to decide alone (or the item was drawn as an "
    "audit sample). Pick the label that is right; the model's choice is pre-selected with its "
    "confidence. Skip the task if it cannot be judged."
)
RAG_GUIDE = (
    "A user rated this answer. Judge it against the question and the retrieved contexts: is it "
    "correct, and where is the fault (retrieval, generation, both, other, none)? A corrected answer "
    "and a note are optional. Skip the task if it cannot be judged."
)
EXTRACTION_GUIDE = (
    "An LLM should have returned JSON matching the {schema} schema; its output failed validation "
    "(errors shown). The answer box is pre-filled with it: make it valid JSON for the schema, "
    "faithful to the source text. A correction that still fails comes back to you with the error. "
    "Skip the task if the text holds nothing to extract."
)
