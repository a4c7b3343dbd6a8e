"""The PGlite TimescaleDB harness really runs the TimescaleDB features Veille's schema uses.

Why: the SQL tests trust this test double; if hypertables, continuous aggregates,
compression or retention stopped working in it, they would pass or fail for the wrong
reason. Each step asserts real values read back over TCP with psycopg.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.support.pglite_timescale import PGliteError, PGliteTimescale

pytestmark = pytest.mark.timescale

DAY1 = datetime(2024, 1, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
# (minutes after DAY1, device, value): the hourly buckets hold 3 (a), 2 (b) and 1 (a, day 2).
OLD_ROWS = [
    (0, "a", 1.0),
    (20, "a", 2.0),
    (40, "a", 3.0),
    (70, "b", 10.0),
    (110, "b", 20.0),
    (24 * 60 + 30, "a", 5.0),
]


def _connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """One autocommit connection without server-side prepares: PGlite shares one session."""
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None)


def _insert(
    conn: psycopg.Connection[tuple[object, ...]], rows: list[tuple[datetime, str, float]]
) -> None:
    """A multi-row INSERT: COPY FROM STDIN crashes PGlite."""
    placeholders = ", ".join(["(%s, %s, %s)"] * len(rows))
    params = [field for row in rows for field in row]
    conn.execute(f"INSERT INTO readings (ts, device, value) VALUES {placeholders}", params)


@pytest.fixture(scope="module")
def timescale() -> Iterator[PGliteTimescale]:
    with PGliteTimescale() as server:
        yield server


def test_timescaledb_features_work_over_tcp(timescale: PGliteTimescale) -> None:
    recent_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    recent_rows = [(recent_hour, "a", 7.0), (recent_hour + timedelta(minutes=1), "b", 8.0)]
    old_rows = [(DAY1 + timedelta(minutes=m), device, value) for m, device, value in OLD_ROWS]

    with _connect(timescale.dsn) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        assert version is not None and str(version[0]).startswith("2.")

        conn.execute(
            """CREATE TABLE readings (
                ts timestamptz NOT NULL, device text NOT NULL, value double precision NOT NULL)"""
        )
        created = conn.execute(
            "SELECT create_hypertable('readings', by_range('ts', INTERVAL '1 day'))"
        ).fetchone()
        assert created is not None
        assert conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
        ).fetchall() == [("readings",)]

        _insert(conn, old_rows + recent_rows)
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (8,)

        # time_bucket
        buckets = conn.execute(
            """SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket, device, count(*), sum(value)
               FROM readings WHERE ts < %s GROUP BY 1, 2 ORDER BY 1, 2""",
            (DAY2 + timedelta(days=1),),
        ).fetchall()
        assert buckets == [
            (DAY1, "a", 3, 6.0),
            (DAY1 + timedelta(hours=1), "b", 2, 30.0),
            (DAY2, "a", 1, 5.0),
        ]

        # continuous aggregate, refreshed by hand (no background workers in PGlite)
        conn.execute(
            """CREATE MATERIALIZED VIEW readings_hourly WITH (timescaledb.continuous) AS
               SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket, device,
                      count(*) AS n, avg(value) AS mean
               FROM readings GROUP BY 1, device WITH NO DATA"""
        )
        hourly_sql = "SELECT bucket, device, n, mean FROM readings_hourly ORDER BY bucket, device"
        assert conn.execute(hourly_sql).fetchall() == []
        conn.execute(
            "CALL refresh_continuous_aggregate('readings_hourly', %s, %s)",
            (DAY1, DAY2 + timedelta(days=1)),
        )
        assert conn.execute(hourly_sql).fetchall() == [
            (DAY1, "a", 3, 2.0),
            (DAY1 + timedelta(hours=1), "b", 2, 15.0),
            (DAY2, "a", 1, 5.0),
        ]

        # the same aggregate kept fresh by its policy, run as a job by hand
        policy = conn.execute(
            """SELECT add_continuous_aggregate_policy('readings_hourly',
                   start_offset => NULL, end_offset => INTERVAL '1 hour',
                   schedule_interval => INTERVAL '1 hour')"""
        ).fetchone()
        assert policy is not None
        conn.execute("CALL run_job(%s)", (policy[0],))
        assert conn.execute("SELECT sum(n) FROM readings_hourly").fetchone() == (8,)

        # compression of the first day's chunk; its rows must read back unchanged
        conn.execute(
            """ALTER TABLE readings SET (timescaledb.compress,
                   timescaledb.compress_segmentby = 'device',
                   timescaledb.compress_orderby = 'ts DESC')"""
        )
        first_chunk = conn.execute(
            "SELECT c::text FROM show_chunks('readings', older_than => %s::timestamptz) c",
            (DAY2,),
        ).fetchall()
        assert len(first_chunk) == 1
        conn.execute("SELECT compress_chunk(%s::regclass)", (first_chunk[0][0],))
        compressed = conn.execute(
            """SELECT format('%I.%I', chunk_schema, chunk_name), is_compressed
               FROM timescaledb_information.chunks
               WHERE hypertable_name = 'readings' ORDER BY range_start"""
        ).fetchall()
        assert compressed[0] == (first_chunk[0][0], True)
        assert all(not is_compressed for _, is_compressed in compressed[1:])
        day1 = conn.execute(
            "SELECT ts, device, value FROM readings WHERE ts < %s ORDER BY ts", (DAY2,)
        ).fetchall()
        assert day1 == [row for row in old_rows if row[0] < DAY2]

        # retention: the policy's job drops every chunk older than 30 days, compressed or not
        retention = conn.execute(
            "SELECT add_retention_policy('readings', INTERVAL '30 days')"
        ).fetchone()
        assert retention is not None
        conn.execute("CALL run_job(%s)", (retention[0],))
        remaining = conn.execute(
            "SELECT count(*) FROM show_chunks('readings', older_than => INTERVAL '30 days')"
        ).fetchone()
        assert remaining == (0,)
        assert conn.execute("SELECT count(*) FROM show_chunks('readings')").fetchone() == (1,)
        assert (
            conn.execute("SELECT ts, device, value FROM readings ORDER BY ts").fetchall()
            == recent_rows
        )


def test_server_process_is_gone_after_exit() -> None:
    server = PGliteTimescale()
    with server:
        pid = server.pid
        # quick reconnects, as a migration then a test body do: once refused by the server
        for attempt in range(5):
            with _connect(server.dsn) as conn:
                assert conn.execute("SELECT %s::int + 1", (attempt,)).fetchone() == (attempt + 1,)
    assert server.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(PGliteError):
        _ = server.dsn


def test_server_process_is_gone_when_the_body_raises() -> None:
    server = PGliteTimescale()
    with pytest.raises(ZeroDivisionError), server:
        pid = server.pid
        _ = 1 / 0
    assert server.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_server_that_dies_on_start_reports_its_stderr(tmp_path: Path) -> None:
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / ".package-lock.json").write_text("{}")
    (tmp_path / "server.mjs").write_text("console.error('boom: no wasm here'); process.exit(3)\n")
    with pytest.raises(PGliteError, match=r"exited with 3(.|\n)*boom: no wasm here"):
        with PGliteTimescale(tmp_path):
            pass
