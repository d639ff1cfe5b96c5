"""Training data out of PostgreSQL, as files ready for fine-tuning (`hitl-workers export`).

One kind per file, examples labelled at or after `since`, oldest first (ties by id), streamed
through a server-side cursor with a progress bar on stderr. The formats are described in
workers/label_sink/README.md; in short, per line (JSONL) or per row (Parquet):

- moderation:  {"text": item text, "label": label}
- rag_answer:  {"messages": [system, user (question + retrieved context), assistant (corrected answer)]}
- extraction:  {"input": source text, "output": corrected JSON text}
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from workers.config import Settings
from workers.contracts import TaskKind
from workers.errors import ConfigError, DependencyUnavailable

Format = Literal["jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "parquet")

DEFAULT_SYSTEM_PROMPT = (
    "Answer the user's question using only the context provided. "
    "If the context does not contain the answer, say so."
)
ROW_GROUP_SIZE = 10_000
FETCH_SIZE = 2_000

Record = dict[str, Any]

# Moderation: of the automatic and the human label of one prediction (an audited decision), the
# human one. An auto-rejected example has no label and an item without inline text has no text:
# neither makes a text/label pair.
MODERATION = """
SELECT text, label FROM (
    SELECT DISTINCT ON (source_event_id)
        input -> 'item' ->> 'text' AS text, label, labelled_at, example_id
    FROM training_examples
    WHERE kind = 'moderation' AND labelled_at >= %(since)s
        AND label IS NOT NULL AND input -> 'item' ->> 'text' IS NOT NULL
    ORDER BY source_event_id, label_source = 'human' DESC
) chosen
ORDER BY labelled_at, example_id
"""
RAG_ANSWER = """
SELECT input ->> 'question', input -> 'contexts', human_output ->> 'corrected_answer'
FROM training_examples
WHERE kind = 'rag_answer' AND labelled_at >= %(since)s
    AND human_output ->> 'corrected_answer' IS NOT NULL
ORDER BY labelled_at, example_id
"""
# The reviewers' JSON text as submitted, from extraction_corrections (jsonb would reorder keys).
EXTRACTION = """
SELECT source_text, corrected_output
FROM extraction_corrections
WHERE resolved_at >= %(since)s
ORDER BY resolved_at, extraction_event_id
"""
QUERIES = {TaskKind.MODERATION: MODERATION, TaskKind.RAG_ANSWER: RAG_ANSWER, TaskKind.EXTRACTION: EXTRACTION}

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
PARQUET_SCHEMAS = {
    TaskKind.MODERATION: pa.schema([("text", pa.string()), ("label", pa.string())]),
    TaskKind.RAG_ANSWER: pa.schema([("messages", pa.list_(MESSAGE))]),
    TaskKind.EXTRACTION: pa.schema([("input", pa.string()), ("output", pa.string())]),
}


@dataclass(frozen=True)
class Exported:
    path: Path | None
    count: int


def parse_since(value: str) -> datetime:
    """An ISO-8601 date or date and time; without an offset it is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise ConfigError(f"--since {value!r}: not an ISO-8601 date or date and time") from error
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def user_message(question: str, contexts: list[dict[str, Any]]) -> str:
    passages = "\n".join(f"[{context['doc_id']}] {context['text']}" for context in contexts)
    return f"{question}\n\nContext:\n{passages}" if passages else question


def to_record(kind: TaskKind, row: tuple[Any, ...], system_prompt: str) -> Record:
    if kind is TaskKind.MODERATION:
        return {"text": row[0], "label": row[1]}
    if kind is TaskKind.RAG_ANSWER:
        question, contexts, answer = row
        return {
            "messages": [
                {"role": "system", "content": system_prompt},
                {"role": "user", "content": user_message(question, contexts)},
                {"role": "assistant", "content": answer},
            ]
        }
    return {"input": row[0], "output": row[1]}


def export_examples(
    dsn: str,
    kind: TaskKind,
    since: datetime,
    fmt: Format,
    output: Path | None,
    *,
    schema: str | None = None,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    progress: bool = True,
) -> Exported:
    """Writes the examples to `output` (None: JSONL to stdout); returns how many."""
    if fmt == "parquet" and output is None:
        raise ConfigError("a Parquet export needs --output")
    with _connect(dsn, schema) as conn:
        total = _count(conn, kind, since)
        with tqdm(total=total, unit="example", file=sys.stderr, disable=not progress) as bar:
            records = _records(conn, kind, since, system_prompt)
            if fmt == "jsonl":
                count = _write_jsonl(records, output, bar)
            else:
                assert output is not None
                count = _write_parquet(records, PARQUET_SCHEMAS[kind], output, bar)
    return Exported(output, count)


def run_export(
    settings: Settings,
    kind: str,
    since: datetime,
    fmt: Format,
    output: str | None,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
) -> int:
    """The `hitl-workers export` command; `output` defaults to `<kind>.<format>`, "-" is stdout."""
    path = Path(output or f"{kind}.{fmt}") if output != "-" else None
    exported = export_examples(
        settings.postgres_dsn.get_secret_value(),
        TaskKind(kind),
        since,
        fmt,
        path,
        system_prompt=system_prompt,
    )
    print(f"exported {exported.count} {kind} examples to {path or 'stdout'}", file=sys.stderr)
    return 0


# -- reading -------------------------------------------------------------------------------------


@contextmanager
def _connect(dsn: str, schema: str | None) -> Iterator[psycopg.Connection[Any]]:
    options = {"options": f"-c search_path={schema}"} if schema else {}
    try:
        with psycopg.connect(dsn, **options) as conn:  # type: ignore[arg-type]
            yield conn
    except psycopg.OperationalError as error:
        raise DependencyUnavailable(f"PostgreSQL unavailable: {error}") from error


def _count(conn: psycopg.Connection[Any], kind: TaskKind, since: datetime) -> int:
    row = conn.execute(f"SELECT count(*) FROM ({QUERIES[kind]}) examples", {"since": since}).fetchone()
    return int(row[0]) if row else 0


def _records(
    conn: psycopg.Connection[Any], kind: TaskKind, since: datetime, system_prompt: str
) -> Iterator[Record]:
    # A named cursor streams the rows instead of loading them all.
    with conn.cursor(name="hitl_export") as cursor:
        cursor.itersize = FETCH_SIZE
        cursor.execute(QUERIES[kind], {"since": since})
        for row in cursor:
            yield to_record(kind, row, system_prompt)


# -- writing -------------------------------------------------------------------------------------


class Progress(Protocol):
    def update(self, n: float | None = 1) -> bool | None: ...


def _write_jsonl(records: Iterator[Record], output: Path | None, bar: Progress) -> int:
    with _text_output(output) as stream:
        count = 0
        for record in records:
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
            bar.update()
    return count


@contextmanager
def _text_output(output: Path | None) -> Iterator[TextIO]:
    if output is None:
        yield sys.stdout
        return
    with output.open("w", encoding="utf-8", newline="\n") as stream:
        yield stream


def _write_parquet(records: Iterator[Record], schema: pa.Schema, output: Path, bar: Progress) -> int:
    count = 0
    with pq.ParquetWriter(output, schema) as writer:
        group: list[Record] = []
        for record in records:
            group.append(record)
            if len(group) == ROW_GROUP_SIZE:
                writer.write_table(pa.Table.from_pylist(group, schema=schema))
                count += len(group)
                bar.update(len(group))
                group = []
        # Written even when empty, so that an empty export is a valid file with its schema.
        writer.write_table(pa.Table.from_pylist(group, schema=schema))
        count += len(group)
        bar.update(len(group))
    return count
