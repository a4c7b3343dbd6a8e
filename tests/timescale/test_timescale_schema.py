"""Veille's TimescaleDB schema branch against a real TimescaleDB build (PGlite + TimescaleDB
2.23): hypertable, continuous aggregate, compression and retention policies, and the writer's
idempotence on plain and compressed chunks.

PGlite has no background workers, so policies are run with ``CALL run_job``; it crashes on
COPY, so the writer's ``unnest`` path is used (the COPY path is tested on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import TupleRow

from store import (
    BatchWriter,
    Flavour,
    SchemaOptions,
    WriteMethod,
    enter_care_context,
    migrate,
    run_maintenance,
)
from tests.support.pglite_timescale import PGliteTimescale

pytestmark = pytest.mark.timescale

RETENTION_DAYS = 20
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def timescale() -> Iterator[PGliteTimescale]:
    with PGliteTimescale() as server:
        yield server


@pytest.fixture
async def conn(timescale: PGliteTimescale) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    info = await migrate(
        timescale.dsn, options=SchemaOptions(retention_days=RETENTION_DAYS, compress_after_days=7)
    )
    assert info.flavour is Flavour.TIMESCALE  # chosen by detection: the extension is available
    async with await psycopg.AsyncConnection.connect(
        timescale.dsn, autocommit=True, prepare_threshold=None
    ) as connection:
        yield connection


def _rows(device: str, days_ago: list[int], per_day: int) -> list[tuple]:  # type: ignore[type-arg]
    rows = []
    for day in days_ago:
        base = NOW - timedelta(days=day)
        for i in range(per_day):
            at = base + timedelta(seconds=i)
            rows.append(
                (
                    at,
                    "chu-ts",
                    "icu",
                    "p-ts",
                    device,
                    "spo2",
                    90.0 + i % 10,
                    "%",
                    day * 1000 + i,
                    at,
                )
            )
    return rows


async def _all(
    conn: psycopg.AsyncConnection[TupleRow], query: str, *params: object
) -> list[TupleRow]:
    cur = await conn.execute(query, params)
    return await cur.fetchall()


async def test_schema_objects_and_policies(conn: psycopg.AsyncConnection[TupleRow]) -> None:
    hypertables = await _all(
        conn, "SELECT hypertable_name FROM timescaledb_information.hypertables"
    )
    assert ("readings",) in hypertables
    caggs = await _all(
        conn,
        "SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY view_name",
    )
    assert caggs == [("readings_1h",), ("readings_1m",)]
    refreshed = await _all(
        conn,
        "SELECT hypertable_name FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_refresh_continuous_aggregate' ORDER BY 1",
    )
    assert len(refreshed) == 2  # one refresh policy per rollup
    jobs = dict(
        await _all(
            conn,
            "SELECT proc_name, config::text FROM timescaledb_information.jobs WHERE job_id >= 1000",
        )
    )
    assert set(jobs) >= {
        "policy_compression",
        "policy_retention",
        "policy_refresh_continuous_aggregate",
    }
    assert f'"{RETENTION_DAYS} days"' in jobs["policy_retention"]
    segment = await _all(
        conn,
        "SELECT attname FROM timescaledb_information.compression_settings "
        "WHERE hypertable_name = 'readings' AND segmentby_column_index IS NOT NULL "
        "ORDER BY segmentby_column_index",
    )
    assert segment == [("patient_pseudonym",), ("metric",)]
    flavour = await _all(conn, "SELECT flavour FROM veille_schema")
    assert flavour == [("timescaledb",)]
    report = await run_maintenance(conn, Flavour.TIMESCALE, SchemaOptions())
    assert not report.rollup_refreshed  # TimescaleDB's own jobs do it


async def test_writer_rollup_compression_and_retention(
    conn: psycopg.AsyncConnection[TupleRow],
) -> None:
    rows = _rows("ts-1", days_ago=[0, 10, 30], per_day=120)
    writer = BatchWriter(conn, WriteMethod.UNNEST)
    first = await writer.write(rows)
    again = await writer.write(rows)
    assert (first.readings_inserted, again.readings_inserted, again.readings_duplicate) == (
        360,
        0,
        360,
    )

    await conn.execute("CALL refresh_continuous_aggregate('readings_1m', NULL, NULL)")
    rollup = await _all(
        conn,
        "SELECT sum(n)::int, min(min), max(max) FROM readings_1m WHERE patient_pseudonym = 'p-ts'",
    )
    assert rollup == [(360, 90.0, 99.0)]
    await conn.execute("CALL refresh_continuous_aggregate('readings_1h', NULL, NULL)")
    hourly = await _all(
        conn,
        "SELECT count(*)::int, sum(n)::int, min(min), max(max) FROM readings_1h "
        "WHERE patient_pseudonym = 'p-ts'",
    )
    # 120 one-second readings per day fall in one or two hours of that day.
    assert hourly[0][1:] == (360, 90.0, 99.0) and 3 <= hourly[0][0] <= 6

    jobs = dict(
        await _all(
            conn, "SELECT proc_name, job_id FROM timescaledb_information.jobs WHERE job_id >= 1000"
        )
    )
    await conn.execute(f"CALL run_job({int(jobs['policy_compression'])})")
    compressed = await _all(
        conn,
        "SELECT count(*) FILTER (WHERE is_compressed), count(*) FROM timescaledb_information.chunks "
        "WHERE hypertable_name = 'readings'",
    )
    assert compressed[0][0] >= 2 and compressed[0][0] < compressed[0][1]  # old chunks only

    # Redelivery into compressed chunks is absorbed by the natural key too.
    replay = await writer.write(rows)
    assert replay.readings_inserted == 0
    assert await _all(conn, "SELECT count(*) FROM readings WHERE device_id = 'ts-1'") == [(360,)]

    await conn.execute(f"CALL run_job({int(jobs['policy_retention'])})")
    remaining = await _all(
        conn,
        "SELECT count(*), min(measured_at) > now() - interval '20 days' FROM readings WHERE device_id = 'ts-1'",
    )
    assert remaining == [(240, True)]  # the 30-day-old readings are gone


async def test_clinic_trend_reads_the_continuous_aggregates_and_the_fresh_tail(
    conn: psycopg.AsyncConnection[TupleRow],
) -> None:
    """The clinic's vitals query on TimescaleDB: materialized buckets plus the readings after
    the aggregate's last bucket, each reading counted once at both resolutions."""
    from clinic import CareScope
    from clinic._models import Resolution
    from clinic._queries import rollup_series

    writer = BatchWriter(conn, WriteMethod.UNNEST)
    start = NOW - timedelta(hours=3)
    # The clinic finds a patient's readings through the devices bound to them (schema v8).
    await conn.execute(
        """INSERT INTO devices (device_id, tenant, device_type, care_unit, patient_pseudonym,
               bound_since) VALUES ('ts-2', 'chu-ts', 'pulse_oximeter', 'icu', 'p-trend', %s)""",
        (start,),
    )
    await conn.execute(
        """INSERT INTO device_bindings (device_id, tenant, care_unit, patient_pseudonym,
               bound_from) VALUES ('ts-2', 'chu-ts', 'icu', 'p-trend', %s)""",
        (start,),
    )
    old = [(start + timedelta(seconds=30 * i), "chu-ts", "icu", "p-trend", "ts-2", "spo2",
            95.0, "%", i, start) for i in range(240)]  # fmt: skip
    await writer.write(old)
    for view in ("readings_1m", "readings_1h"):
        await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
    fresh_start = NOW - timedelta(minutes=30)
    fresh = [(fresh_start + timedelta(seconds=i), "chu-ts", "icu", "p-trend", "ts-2", "spo2",
              91.0, "%", 1000 + i, fresh_start) for i in range(60)]  # fmt: skip
    await writer.write(fresh)

    for resolution in Resolution:
        async with conn.transaction():  # as the clinic does: the care context, then the query
            await enter_care_context(conn, tenant="chu-ts", care_units=("icu",))
            series = await rollup_series(
                conn, CareScope("chu-ts", ("icu",)), patient="p-trend", resolution=resolution,
                since=NOW - timedelta(hours=4), until=NOW + timedelta(hours=1),
            )  # fmt: skip
        points = series[0].points
        assert sum(p.n for p in points) == 300, resolution
        assert min(p.min or 0 for p in points) == 91.0
        async with conn.transaction():
            await enter_care_context(conn, tenant="chu-ts", care_units=("ward-9",))
            outside = await rollup_series(
                conn, CareScope("chu-ts", ("ward-9",)), patient="p-trend", resolution=resolution,
                since=NOW - timedelta(hours=4), until=NOW + timedelta(hours=1),
            )  # fmt: skip
        assert outside == []


async def test_the_clinic_role_reads_compressed_readings_only_through_its_view(
    conn: psycopg.AsyncConnection[TupleRow],
) -> None:
    """TimescaleDB refuses row-level security on a compressed hypertable (#6827): the clinic
    has no privilege on ``readings`` (nor so on its chunks) and reads the security-barrier
    view, whose filter holds on compressed chunks too."""
    writer = BatchWriter(conn, WriteMethod.UNNEST)
    mine = [(r[0], "chu-ts", "icu", "p-view", "ts-icu", *r[5:]) for r in _rows("x", [20, 1], 30)]
    other = [(r[0], "chu-ts", "ward-9", "p-other", "ts-ward", *r[5:]) for r in _rows("x", [20], 30)]
    await writer.write(mine + other)
    await conn.execute(
        "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('readings') c"
    )
    chunks = await _all(
        conn, "SELECT (SELECT count(*) FROM show_chunks('readings')), count(*) FILTER "
        "(WHERE is_compressed) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
    )  # fmt: skip
    assert chunks[0][0] == chunks[0][1] >= 2  # every chunk is compressed
    chunk = (await _all(conn, "SELECT c::text FROM show_chunks('readings') c LIMIT 1"))[0][0]
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE veille_clinic")
        await enter_care_context(conn, tenant="chu-ts", care_units=("icu",))
        units = await _all(conn, "SELECT DISTINCT tenant, care_unit FROM readings_visible")
        mine_seen = await _all(
            conn, "SELECT count(*) FROM readings_visible WHERE patient_pseudonym = 'p-view'"
        )
        other_seen = await _all(
            conn, "SELECT count(*) FROM readings_visible WHERE patient_pseudonym = 'p-other'"
        )
    assert units == [("chu-ts", "icu")]
    assert (mine_seen, other_seen) == ([(60,)], [(0,)])
    for relation in ("readings", chunk):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with conn.transaction():
                await conn.execute("SET LOCAL ROLE veille_clinic")
                await conn.execute(f"SELECT count(*) FROM {relation}".encode())
