"""PostgreSQL for real: a table in the test's own schema, rows written and read back with psycopg."""

from __future__ import annotations

import datetime as dt

import psycopg


def test_rows_written_are_read_back(pg_connection: psycopg.Connection, pg_schema: str) -> None:
    pg_connection.execute(
        "CREATE TABLE labels ("
        "event_id uuid PRIMARY KEY, label text NOT NULL, labelled_at timestamptz NOT NULL)"
    )
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    rows = [(f"00000000-0000-4000-8000-{i:012d}", f"label-{i % 3}", now) for i in range(100)]
    with pg_connection.cursor() as cursor:
        cursor.executemany("INSERT INTO labels VALUES (%s, %s, %s)", rows)
        cursor.execute("SELECT label, count(*) FROM labels GROUP BY label ORDER BY label")
        assert cursor.fetchall() == [("label-0", 34), ("label-1", 33), ("label-2", 33)]
        cursor.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'labels'")
        assert cursor.fetchall() == [(pg_schema,)]
        cursor.execute("SELECT labelled_at FROM labels LIMIT 1")
        assert cursor.fetchone() == (now,)
