"""The sink: readings, alert events and dead letters from Kafka into the database.

A plain aiokafka consumer group (not a Faust agent) because the contract is simple and must
be exact: poll a batch, write it in one transaction (idempotent by natural keys), and only
then commit the offsets. A crash anywhere before the commit replays the batch, which the
keys absorb. A database outage is retried with backoff without committing anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError, IllegalStateError
from psycopg.rows import TupleRow

from devices import (
    AlertEvent,
    DeadLetter,
    DeadLetterReason,
    read_readings_record,
    us_to_datetime,
)
from store import (
    AlertEventRow,
    BatchWriter,
    DeadLetterRow,
    Flavour,
    ReadingBatches,
    SchemaOptions,
    WriteMethod,
    WriteResult,
    run_maintenance,
)
from telemetry import SinkMetrics, correlated
from veille.settings import Settings, TopicNames

from ._contiguous import ContiguousFetches
from ._lag import follow_lag
from ._sink_watch import follow_open_alerts

__all__ = [
    "ALERTS_GROUP_ID",
    "GROUP_ID",
    "SinkCounters",
    "SinkRows",
    "rows_from_records",
    "run_sink",
    "sink_lanes",
]

log = logging.getLogger(__name__)

GROUP_ID = "veille-sink"  # readings and dead letters
ALERTS_GROUP_ID = "veille-sink-alerts"  # alert events (sink_lanes)
POLL_TIMEOUT_MS = 500
RETRY_MAX_DELAY_S = 10.0
MAINTENANCE_EVERY_S = 3600.0
LANES = 2  # sink_lanes


@dataclass(slots=True)
class SinkCounters:
    readings_inserted: int = 0
    readings_duplicate: int = 0
    alert_events: int = 0
    dead_letters: int = 0
    batches: int = 0
    write_failures: int = 0
    # Lanes whose last write failed (sink_lanes): not ready while any is (readiness check)
    failing: set[str] = field(default_factory=set)
    offset_gaps: int = 0  # fetches that skipped an offset, read again (streams/_contiguous.py)
    # Monotonic time of each lane's last poll (sink_lanes): stuck when the oldest gets old
    polls: dict[str, float] = field(default_factory=dict)

    def count_offset_gap(self) -> None:
        self.offset_gaps += 1

    def polled(self, group_id: str) -> None:
        self.polls[group_id] = time.monotonic()

    @property
    def database_failing(self) -> bool:
        return bool(self.failing)

    @property
    def polled_at(self) -> float:
        """The oldest lane's last poll (0 before every lane polled once)."""
        return min(self.polls.values()) if len(self.polls) == LANES else 0.0


@dataclass(slots=True)
class SinkRows:
    readings: ReadingBatches
    alert_events: list[AlertEventRow]
    dead_letters: list[DeadLetterRow]
    # Readings per (tenant, care unit), and the gateway bursts they came from (for the logs)
    per_unit: Counter[tuple[str, str]] = field(default_factory=Counter)
    correlation_ids: list[str] = field(default_factory=list)


def rows_from_records(
    records: Iterable[ConsumerRecord[bytes, bytes]], settings: Settings
) -> SinkRows:
    rows = SinkRows(ReadingBatches(), [], [])
    topics = settings.topics
    for record in records:
        value = record.value
        if value is None:
            continue
        try:
            _add_record(rows, record.topic, value, topics)
        except (ValueError, KeyError, TypeError) as exc:
            # A record we cannot read must not stop the sink: keep it as a dead letter.
            log.error("record %s/%d/%d is unreadable (%s); stored as a dead letter",
                      record.topic, record.partition, record.offset, exc)  # fmt: skip
            d = DeadLetter.unreadable_record(
                stage="sink",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                raw=value,
                error=exc,
            )
            rows.dead_letters.append(_dead_letter_row(d))
    return rows


def _dead_letter_row(d: DeadLetter) -> DeadLetterRow:
    return (
        d.dead_letter_id, d.stage, d.reason.value, d.detail, d.mqtt_topic, d.device_id,
        us_to_datetime(d.received_at_us), d.raw,
    )  # fmt: skip


def _add_record(rows: SinkRows, topic: str, value: bytes, topics: TopicNames) -> None:
    if topic == topics.readings:
        record = read_readings_record(value)
        rows.correlation_ids += record.correlation_ids
        for batch in record.batches:
            rows.readings.add(batch)
            rows.per_unit[batch.tenant, batch.care_unit] += len(batch.metrics)
    elif topic == topics.alerts:
        e = AlertEvent.from_json(value)
        rows.alert_events.append(
            AlertEventRow(
                e.alert_id,
                e.kind.value,
                e.tenant,
                e.care_unit,
                e.patient,
                e.rule,
                e.metric,
                e.priority.value,
                us_to_datetime(e.at_us),
                e.value,
                e.message,
                e.actor,
                e.level,
            )  # fmt: skip
        )
    elif topic == topics.dead_letters:
        rows.dead_letters.append(_dead_letter_row(DeadLetter.from_json(value)))


class _Database:
    """The sink's one connection: writes until durable, isolates what the database refuses."""

    def __init__(
        self,
        settings: Settings,
        method: WriteMethod,
        counters: SinkCounters,
        stop: asyncio.Event,
        metrics: SinkMetrics | None = None,
        lane: str = GROUP_ID,
    ) -> None:
        self._lane = lane
        self._metrics = metrics
        self._settings = settings
        self._conninfo = settings.database_url_for("sink").get_secret_value()
        self._method = method
        self._counters = counters
        self._stop = stop
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._writer: BatchWriter | None = None

    async def _writer_ready(self) -> BatchWriter:
        if self._conn is None or self._conn.closed or self._writer is None:
            self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            self._writer = BatchWriter(self._conn, self._method)
        return self._writer

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        self._conn = self._writer = None

    async def store(self, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        """Write the records durably; False only when stopping while the database is down.

        A batch the database refuses for its content (not for an outage) is retried record by
        record, and a record it still refuses is kept as a dead letter: one bad record never
        blocks the partition behind it.
        """
        try:
            return await self._write_until_durable(rows_from_records(records, self._settings))
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            log.error("database refused a batch of %d records (%s); isolating", len(records), exc)
            if self._metrics is not None:
                self._metrics.write_errors.labels("refused").inc()
        for record in records:
            try:
                if not await self._write_until_durable(rows_from_records([record], self._settings)):
                    return False
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                dead = DeadLetter.unreadable_record(
                    stage="sink",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    raw=record.value or b"",
                    error=exc,
                    reason=DeadLetterReason.STORE_REJECTED,
                )
                rows = SinkRows(ReadingBatches(), [], [_dead_letter_row(dead)])
                if not await self._write_until_durable(rows):
                    return False
        return True

    async def _write_until_durable(self, rows: SinkRows) -> bool:
        delay = 0.2
        counters = self._counters
        while True:
            try:
                writer = await self._writer_ready()
                started = time.monotonic()
                result = await writer.write(rows.readings, rows.alert_events, rows.dead_letters)
                counters.readings_inserted += result.readings_inserted
                counters.readings_duplicate += result.readings_duplicate
                counters.alert_events += result.alert_events_inserted
                counters.dead_letters += result.dead_letters_inserted
                counters.failing.discard(self._lane)
                if self._metrics is not None:
                    _count_written(self._metrics, rows, result, time.monotonic() - started)
                if rows.correlation_ids and log.isEnabledFor(logging.DEBUG):
                    with correlated(",".join(sorted(set(rows.correlation_ids)))):
                        log.debug("stored %d readings (%d new), %d alert events, %d dead letters",
                                  len(rows.readings), result.readings_inserted,
                                  len(rows.alert_events), len(rows.dead_letters))  # fmt: skip
                return True
            except psycopg.OperationalError as exc:
                counters.write_failures += 1
                counters.failing.add(self._lane)
                if self._metrics is not None:
                    self._metrics.write_errors.labels("unavailable").inc()
                log.warning("database unavailable (%s); retry in %.1f s, offsets not committed",
                            exc, delay)  # fmt: skip
                await self.close()
                if self._stop.is_set():
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY_S)


def _count_written(
    metrics: SinkMetrics, rows: SinkRows, result: WriteResult, seconds: float
) -> None:
    metrics.write.observe(seconds)
    metrics.rows.labels("readings").inc(result.readings_inserted)
    metrics.rows.labels("alert_events").inc(result.alert_events_inserted)
    metrics.rows.labels("dead_letters").inc(result.dead_letters_inserted)
    metrics.duplicates.inc(result.readings_duplicate)
    for (tenant, care_unit), count in rows.per_unit.items():
        metrics.stored.labels(tenant, care_unit).inc(count)
    # The sink's own dead letters (records it could not read or store); the others were
    # counted by the stage that made them.
    metrics.count(row[2] for row in rows.dead_letters if row[1] == "sink")


async def _maintain(conninfo: str, flavour: Flavour, stop: asyncio.Event) -> None:
    """Plain PostgreSQL's housekeeping (partitions, rollups), hourly from the start, on a
    connection of its own beside the writes: a rollup refresh reads every reading, which
    took minutes at ten million (`veille drill`), and writes must not wait for it. On
    TimescaleDB the database's own jobs do this."""
    if flavour is Flavour.TIMESCALE:
        return
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                report = await run_maintenance(conn, flavour, SchemaOptions())
            log.info("maintenance: %s", report)
        except psycopg.Error as exc:
            log.warning("maintenance failed (%s); will try again next hour", exc)
        try:
            await asyncio.wait_for(stop.wait(), MAINTENANCE_EVERY_S)
        except TimeoutError:
            pass


@dataclass(frozen=True, slots=True)
class _Lane:
    """One consumer group of the sink: its topics, its fetch wait and its own connection."""

    group_id: str
    topics: tuple[str, ...]
    fetch_max_wait_ms: int


def sink_lanes(settings: Settings) -> tuple[_Lane, _Lane]:
    """Readings and dead letters in one group, alert events in another.

    An alert event used to wait in the same fetch and the same transaction as thousands of
    readings: behind a backlog of readings (a database outage caught up, a burst) it waited
    for all of them. Its own group, connection and shorter fetch wait let it land while the
    readings lane is busy. Its fetch wait is its own: on the embedded Tansu a hop takes up to
    half the wait, and every fetch costs the broker CPU even on an empty topic, so shorter is
    not free (docs/LOCAL_STACK.md).
    """
    topics = settings.topics
    return (
        _Lane(GROUP_ID, (topics.readings, topics.dead_letters), settings.sink_fetch_max_wait_ms),
        _Lane(ALERTS_GROUP_ID, (topics.alerts,), settings.sink_alerts_fetch_max_wait_ms),
    )


async def run_sink(
    settings: Settings,
    stop: asyncio.Event,
    counters: SinkCounters | None = None,
    *,
    method: WriteMethod = WriteMethod.COPY,
    flavour: Flavour = Flavour.POSTGRES,
    metrics: SinkMetrics | None = None,
) -> SinkCounters:
    """Both lanes until ``stop``; a lane that fails stops the other (the process exits)."""
    counters = counters or SinkCounters()
    conninfo = settings.database_url_for("sink").get_secret_value()
    lanes = sink_lanes(settings)
    background = [asyncio.create_task(_maintain(conninfo, flavour, stop))]
    if metrics is not None:
        background.append(asyncio.create_task(follow_open_alerts(conninfo, metrics, stop)))
        background += [
            asyncio.create_task(
                follow_lag(settings.kafka_bootstrap, lane.group_id, lane.topics, metrics.lag)
            )
            for lane in lanes
        ]
    draining = [
        asyncio.create_task(_drain(lane, settings, stop, counters, method, metrics))
        for lane in lanes
    ]
    try:
        done, _ = await asyncio.wait(draining, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # a lane's failure is the sink's
    finally:
        for task in [*draining, *background]:
            task.cancel()
        await asyncio.gather(*draining, *background, return_exceptions=True)
    return counters


async def _drain(
    lane: _Lane,
    settings: Settings,
    stop: asyncio.Event,
    counters: SinkCounters,
    method: WriteMethod,
    metrics: SinkMetrics | None,
) -> None:
    """Poll, store, commit: the offsets of a batch are committed once it is durable."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=lane.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.broker_session_timeout_s * 1000),
        heartbeat_interval_ms=1000,
        max_poll_records=settings.sink_batch_max,
        fetch_max_wait_ms=lane.fetch_max_wait_ms,
    )
    fetches = ContiguousFetches(
        consumer, lost_as="they were never stored", on_gap=counters.count_offset_gap
    )
    consumer.subscribe(list(lane.topics), listener=fetches.listener)
    await consumer.start()
    database = _Database(settings, method, counters, stop, metrics, lane.group_id)
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            counters.polled(lane.group_id)
            batch = await fetches.take(fetched)
            if not batch:
                continue
            records = [r for rs in batch.values() for r in rs]
            if metrics is not None:
                metrics.batch.observe(len(records))
                for tp, rs in batch.items():
                    metrics.consumed.labels(lane.group_id, tp.topic).inc(len(rs))
            if not await database.store(records):
                return  # stopping while the database is down: nothing committed, replayed later
            offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
            committing = time.monotonic()
            try:
                await consumer.commit(offsets)
                if metrics is not None:
                    metrics.commit.labels(lane.group_id).observe(time.monotonic() - committing)
            except (CommitFailedError, IllegalStateError) as exc:
                # A rebalance took the partitions away: their new owner replays the batch,
                # which the natural keys make harmless.
                log.warning("offset commit refused after a rebalance (%s); batch will replay", exc)
            counters.batches += 1
    finally:
        await consumer.stop()
        await database.close()
