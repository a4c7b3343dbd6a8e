"""The writer and the plain-PostgreSQL schema branch against the real local PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from aiokafka import ConsumerRecord

from devices import ReadingBatch, now_us, us_to_datetime
from store import (
    AlertEventRow,
    BatchWriter,
    Flavour,
    ReadingBatches,
    SchemaOptions,
    WriteMethod,
    migrate,
    run_maintenance,
)
from streams._sink import SinkCounters, _Database
from tests.integration.conftest import RunningStack

pytestmark = pytest.mark.slow


def _readings(device: str, n: int, start: datetime) -> list[tuple]:  # type: ignore[type-arg]
    return [
        (
            start + timedelta(seconds=i),
            "chu-test",
            "icu",
            "p-store",
            device,
            "heart_rate",
            60.0 + i,
            "/min",
            i,
            start,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("method", [WriteMethod.COPY, WriteMethod.UNNEST])
async def test_writer_is_idempotent_on_the_natural_key(
    running_stack: RunningStack, method: WriteMethod
) -> None:
    device = f"w-{uuid.uuid4().hex[:8]}"
    rows = _readings(device, 500, datetime.now(UTC) - timedelta(hours=1))
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as conn:
        writer = BatchWriter(conn, method)
        first = await writer.write(rows)
        again = await writer.write(rows[:250] + _readings(device, 10, datetime.now(UTC)))
        # A repeat inside one batch (a device's retry in the same burst) holds nothing up.
        late = _readings(device, 1, datetime.now(UTC) + timedelta(minutes=1))
        repeated = await writer.write(late + late)
        cur = await conn.execute(
            "SELECT count(*), min(value), max(value) FROM readings WHERE device_id = %s", (device,)
        )
        count, low, high = await cur.fetchone()  # type: ignore[misc]
    assert (first.readings_inserted, first.readings_duplicate) == (500, 0)
    assert (again.readings_inserted, again.readings_duplicate) == (10, 250)
    assert (repeated.readings_inserted, repeated.readings_duplicate) == (1, 1)
    assert (count, low, high) == (511, 60.0, 559.0)


async def test_alert_lifecycle_is_idempotent_and_resolution_is_terminal(
    running_stack: RunningStack,
) -> None:
    alert_id = str(uuid.uuid4())
    at = datetime.now(UTC) - timedelta(minutes=3)

    def event(kind: str, when: datetime) -> AlertEventRow:
        return AlertEventRow(
            alert_id,
            kind,
            "chu-test",
            "icu",
            "p-alert",
            "spo2_low",
            "spo2",
            "high",
            when,
            85.0,
            kind,
        )

    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as conn:
        writer = BatchWriter(conn)
        opened = await writer.write(alert_events=[event("opened", at)])
        resolved = await writer.write(alert_events=[event("resolved", at + timedelta(minutes=1))])
        replay = await writer.write(
            alert_events=[event("opened", at), event("resolved", at + timedelta(minutes=1))]
        )
        cur = await conn.execute(
            "SELECT state, opened_at, resolved_at FROM alerts WHERE alert_id = %s", (alert_id,)
        )
        state = await cur.fetchone()
        cur = await conn.execute(
            "SELECT kind FROM alert_events WHERE alert_id = %s ORDER BY at", (alert_id,)
        )
        kinds = [r[0] for r in await cur.fetchall()]
    assert (
        opened.alert_events_inserted,
        resolved.alert_events_inserted,
        replay.alert_events_inserted,
    ) == (1, 1, 0)
    assert state == ("resolved", at, at + timedelta(minutes=1))
    assert kinds == ["opened", "resolved"]


async def test_dead_letters_are_stored_once(running_stack: RunningStack) -> None:
    dead_id = uuid.uuid4().hex
    row = (
        dead_id,
        "gateway",
        "undecodable",
        "not JSON",
        "veille/v1/t/d/readings",
        "d",
        datetime.now(UTC),
        "{\\x00",
    )
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as conn:
        writer = BatchWriter(conn)
        first = await writer.write(dead_letters=[row])
        second = await writer.write(dead_letters=[row])
        cur = await conn.execute(
            "SELECT raw FROM dead_letters WHERE dead_letter_id = %s", (dead_id,)
        )
        stored = await cur.fetchone()
    assert (first.dead_letters_inserted, second.dead_letters_inserted) == (1, 0)
    assert stored == ("{\\x00",)


async def test_postgres_branch_partitions_rollup_and_migration_rerun(
    running_stack: RunningStack,
) -> None:
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as conn:
        info = await migrate(running_stack.dsn)  # a second run changes nothing and does not fail
        assert info.flavour is Flavour.POSTGRES
        cur = await conn.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'readings'"
        )
        partitions = (await cur.fetchone())[0]  # type: ignore[index]
        assert partitions >= 8 + 7 + 1  # days back, today, days ahead, and the default partition
        device = f"r-{uuid.uuid4().hex[:8]}"
        minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
        await BatchWriter(conn).write(_readings(device, 90, minute))
        report = await run_maintenance(conn, Flavour.POSTGRES, SchemaOptions())
        assert report.rollup_refreshed
        cur = await conn.execute(
            "SELECT bucket, n, min, max FROM readings_1m WHERE patient_pseudonym = 'p-store' AND bucket >= %s "
            "AND bucket < %s ORDER BY bucket",
            (minute, minute + timedelta(minutes=2)),
        )
        buckets = await cur.fetchall()
        cur = await conn.execute(
            "SELECT tableoid::regclass::text FROM readings WHERE device_id = %s LIMIT 1", (device,)
        )
        partition = (await cur.fetchone())[0]  # type: ignore[index]
    # Other tests write to the same patient, so compare with what this test wrote as a floor.
    assert len(buckets) == 2
    assert buckets[0][1] >= 60 and buckets[0][2] <= 60.0 and buckets[0][3] >= 119.0
    assert partition == f"readings_p{minute:%Y%m%d}"


async def test_sink_keeps_a_record_the_database_refuses_and_stores_the_rest(
    running_stack: RunningStack,
) -> None:
    """A record whose content PostgreSQL rejects (here a NUL byte in a text field) becomes a
    ``store_rejected`` dead letter; the other records of the same batch are stored."""
    settings = running_stack.settings
    device = f"iso-{uuid.uuid4().hex[:8]}"
    now_us_ = int(datetime.now(UTC).timestamp() * 1e6)
    good = ReadingBatch(
        "chu-test", "icu", "p-iso", device, ("spo2",), (97.0,), (now_us_,), (1,), (now_us_,)
    )
    bad = ReadingBatch(
        "chu\x00test", "icu", "p-iso", device, ("spo2",), (96.0,), (now_us_,), (2,), (now_us_,)
    )
    records = [
        ConsumerRecord(
            settings.topics.readings, 0, offset, 0, 0, b"k", batch.to_json(), None, 1, 1, ()
        )
        for offset, batch in ((7, good), (8, bad))
    ]
    counters = SinkCounters()
    database = _Database(settings, WriteMethod.COPY, counters, asyncio.Event())
    try:
        assert await database.store(records)
        assert await database.store(records)  # a replay after a crash changes nothing
    finally:
        await database.close()
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT seq FROM readings WHERE device_id = %s", (device,))
        stored = await cur.fetchall()
        cur = await conn.execute(
            "SELECT stage, reason, detail FROM dead_letters WHERE raw LIKE %s", (f"%{device}%",)
        )
        dead = await cur.fetchall()
    assert stored == [(1,)]
    assert len(dead) == 1 and dead[0][:2] == ("sink", "store_rejected")
    assert "refused veille.readings record" in dead[0][2]
    assert counters.readings_inserted == 1 and counters.dead_letters == 1


async def test_the_sinks_copy_bytes_store_what_the_row_path_stores(
    running_stack: RunningStack,
) -> None:
    """ReadingBatches (binary COPY built per batch, times as microseconds) against the row
    tuples psycopg encodes itself: same rows, to the microsecond, NULLs and non-ASCII text
    included; a batch that repeats a stored reading goes through the staging path."""
    tag = uuid.uuid4().hex[:8]
    base = now_us() - 3_600_000_000
    batches = [
        ReadingBatch("chu-test", "réa-néonat", f"p-é{tag}", f"dev-a-{tag}",
                     ("spo2", "pulse_rate", "spo2"), (97.0, None, 88.5),
                     (base + 1, base + 2, base + 999_999), (1, 2, 3), (base + 5, base + 6, base + 7)),
        ReadingBatch("chu-test", "icu", f"p-{tag}", f"dev-b-{tag}", ("body_temperature",),
                     (38.25,), (base + 10,), (2**40,), (base + 11,)),
    ]  # fmt: skip
    fast, slow = ReadingBatches(), ReadingBatches()
    for batch in batches:
        fast.add(batch)
    for batch in batches:  # the same readings under other devices, written as row tuples
        slow.add(dataclasses.replace(batch, device_id=batch.device_id.replace("dev-", "row-")))
    select = """SELECT measured_at, tenant, care_unit, patient_pseudonym, metric, value, unit,
                       seq, received_at FROM readings WHERE device_id LIKE %s
                ORDER BY measured_at, metric, seq"""
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as conn:
        writer = BatchWriter(conn, WriteMethod.COPY)
        assert (await writer.write(fast)).readings_inserted == 4
        assert (await writer.write(slow.rows())).readings_inserted == 4
        again = ReadingBatches()
        again.add(batches[1])  # stored already: COPY fails, staging + ON CONFLICT takes it
        again.add(dataclasses.replace(batches[1], seqs=(2**40 + 1,)))
        repeat = await writer.write(again)
        by_copy = await (await conn.execute(select, (f"dev-%-{tag}",))).fetchall()
        by_rows = await (await conn.execute(select, (f"row-%-{tag}",))).fetchall()
    assert (repeat.readings_inserted, repeat.readings_duplicate) == (1, 1)
    assert [r for r in by_copy if r[7] != 2**40 + 1] == by_rows
    assert by_rows[0][0] == us_to_datetime(base + 1)
    assert by_rows[-1][0] == us_to_datetime(base + 999_999)
    assert [r[5] for r in by_rows] == [97.0, None, 38.25, 88.5]
    assert [r[6] for r in by_rows] == ["%", "/min", "Cel", "%"]
    assert by_rows[0][2] == "réa-néonat"
    assert [r[7] for r in by_copy] == [1, 2, 2**40, 2**40 + 1, 3]
