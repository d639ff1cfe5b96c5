"""`hitl-workers export`: a known set of examples gives exactly the expected files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from psycopg.conninfo import make_conninfo

from tests.label_sink.conftest import StoreFactory
from tests.label_sink.events import T0, decision, extraction, feedback, prediction, resolution
from tests.support.services import REPO_DIR
from workers.contracts import (
    DecisionOutcome,
    Document,
    Event,
    ExtractionOutcome,
    Item,
    LabelOutcome,
    RagOutcome,
    RagVerdict,
    ResolutionStatus,
    TaskKind,
)
from workers.label_sink.export import DEFAULT_SYSTEM_PROMPT, Format, export_examples, parse_since
from workers.runtime.worker import Origin, Processed

SINCE = T0 + timedelta(days=1)


def at(hours: int) -> Any:
    return SINCE + timedelta(hours=hours)


def known_events() -> list[Event]:
    audited = prediction(3, item=Item(id="c3", content_type="text/plain", text="Buy cheap pills now"))
    return [
        # moderation
        resolution(prediction(1, item=Item(id="c1", content_type="text/plain", text="You are an idiot")),
                   LabelOutcome(label="toxic"), resolved_at=at(1)),
        resolution(prediction(2, item=Item(id="c2", content_type="text/plain", text="Thanks, très utile")),
                   LabelOutcome(label="ok"), resolved_at=at(2)),
        decision(audited, label="spam", decided_at=at(3)),
        resolution(audited, LabelOutcome(label="ok"), resolved_at=at(4)),
        decision(prediction(5, item=Item(id="c5", content_type="text/plain", text="Great post")),
                 label="ok", decided_at=at(5)),
        decision(prediction(6), outcome=DecisionOutcome.AUTO_REJECTED, decided_at=at(6)),
        resolution(prediction(7, item=Item(id="c7", content_type="image/png", uri="s3://b/7.png")),
                   LabelOutcome(label="ok"), resolved_at=at(7)),
        resolution(prediction(8), LabelOutcome(label="toxic"), resolved_at=T0),
        resolution(prediction(9), status=ResolutionStatus.DISCARDED, resolved_at=at(9)),
        # rag_answer
        resolution(feedback(10, question="How do I reset my password?"), resolved_at=at(10)),
        resolution(feedback(11, question="Is there a dark mode?", contexts=()),
                   RagOutcome(verdict=RagVerdict.INCORRECT, corrected_answer="Yes: Settings > Appearance."),
                   resolved_at=at(11)),
        resolution(feedback(12), RagOutcome(verdict=RagVerdict.CORRECT), resolved_at=at(12)),
        # extraction
        resolution(extraction(13), ExtractionOutcome(corrected_json='{"total": 120.5, "currency": "EUR"}'),
                   resolved_at=at(13)),
        resolution(extraction(14, document=Document(id="r14", text="Rechnung: 5 €")),
                   ExtractionOutcome(corrected_json='{"z": 1, "a": {"b": [1, 2]}}'), resolved_at=at(14)),
        resolution(extraction(15), resolved_at=T0),
    ]  # fmt: skip


MODERATION_JSONL = """\
{"text": "You are an idiot", "label": "toxic"}
{"text": "Thanks, très utile", "label": "ok"}
{"text": "Buy cheap pills now", "label": "ok"}
{"text": "Great post", "label": "ok"}
"""

RAG_CONTEXT = (
    "[kb-12] To reset a password, open Settings > Security.\n[kb-40] Passwords expire every 90 days."
)
RAG_RECORDS = [
    {
        "messages": [
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": f"How do I reset my password?\n\nContext:\n{RAG_CONTEXT}"},
            {"role": "assistant", "content": "Open Settings, then Security, then choose Reset password."},
        ]
    },
    {
        "messages": [
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": "Is there a dark mode?"},
            {"role": "assistant", "content": "Yes: Settings > Appearance."},
        ]
    },
]
RAG_JSONL = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in RAG_RECORDS)

EXTRACTION_JSONL = (
    '{"input": "Invoice 13: total 120.50 EUR, due 2026-04-01",'
    ' "output": "{\\"total\\": 120.5, \\"currency\\": \\"EUR\\"}"}\n'
    '{"input": "Rechnung: 5 €", "output": "{\\"z\\": 1, \\"a\\": {\\"b\\": [1, 2]}}"}\n'
)

EXPECTED_JSONL = {
    TaskKind.MODERATION: MODERATION_JSONL,
    TaskKind.RAG_ANSWER: RAG_JSONL,
    TaskKind.EXTRACTION: EXTRACTION_JSONL,
}


@pytest.fixture
def stored_examples(make_store: StoreFactory) -> None:
    batch = [Processed(e, Origin("hitl.review.resolved", 0, n, None)) for n, e in enumerate(known_events())]
    assert make_store().write(batch) == {}


@pytest.mark.parametrize("kind", list(TaskKind))
def test_jsonl_and_parquet_exports_are_exactly_the_expected_files(
    stored_examples: None, postgres_dsn: str, pg_schema: str, tmp_path: Path, kind: TaskKind
) -> None:
    jsonl, parquet = tmp_path / "out.jsonl", tmp_path / "out.parquet"

    exported = export_examples(postgres_dsn, kind, SINCE, "jsonl", jsonl, schema=pg_schema, progress=False)
    export_examples(postgres_dsn, kind, SINCE, "parquet", parquet, schema=pg_schema, progress=False)

    assert jsonl.read_text(encoding="utf-8") == EXPECTED_JSONL[kind]
    expected_rows = [json.loads(line) for line in EXPECTED_JSONL[kind].splitlines()]
    assert exported.count == len(expected_rows)
    table = pq.read_table(parquet)
    assert table.to_pylist() == expected_rows
    assert table.schema.names == list(expected_rows[0])


def test_an_empty_export_is_a_valid_empty_file(
    stored_examples: None, postgres_dsn: str, pg_schema: str, tmp_path: Path
) -> None:
    later = SINCE + timedelta(days=30)
    formats: list[Format] = ["jsonl", "parquet"]
    for fmt in formats:
        path = tmp_path / f"empty.{fmt}"
        assert (
            export_examples(postgres_dsn, TaskKind.RAG_ANSWER, later, fmt, path, schema=pg_schema).count == 0
        )
    assert (tmp_path / "empty.jsonl").read_text() == ""
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0


def test_since_is_iso_8601_and_utc_by_default() -> None:
    assert parse_since("2026-03-02T12:00:00") == SINCE
    assert parse_since("2026-03-02T13:00:00+01:00") == SINCE
    assert parse_since("2026-03-02") == SINCE - timedelta(hours=12)


def test_the_export_command(stored_examples: None, postgres_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HITL_POSTGRES_DSN": make_conninfo(postgres_dsn, options=f"-c search_path={pg_schema}"),
        "PYTHONPATH": str(REPO_DIR),
    }
    command = [sys.executable, "-m", "workers", "export", "--kind", "extraction", "--since", "2026-03-02"]

    done = subprocess.run(
        [*command, "--format", "parquet"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "extraction.parquet").num_rows == 2
    assert "exported 2 extraction examples to extraction.parquet" in done.stderr
    assert "2/2" in done.stderr, "a progress bar on stderr"

    done = subprocess.run([*command, "--output", "-"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == EXTRACTION_JSONL

    done = subprocess.run([*command[:-1], "yesterday"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "--since 'yesterday': not an ISO-8601 date" in done.stderr
