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

__all__ = ["SinkCounters", "SinkRows", "rows_from_records", "run_sink"]

log = logging.getLogger(__name__)

GROUP_ID = "veille-sink"
POLL_TIMEOUT_MS = 500
RETRY_MAX_DELAY_S = 10.0
MAINTENANCE_EVERY_S = 3600.0


@dataclass(slots=True)
class SinkCounters:
    readings_inserted: int = 0
    readings_duplicate: int = 0
    alert_events: int = 0
    dead_letters: int = 0
    batches: int = 0
    write_failures: int = 0
    database_failing: bool = False  # the last write failed: not ready (readiness check)
    polled_at: float = 0.0  # monotonic time of the last poll: stuck when it gets old
    offset_gaps: int = 0  # fetches that skipped an offset, read again (streams/_contiguous.py)

    def count_offset_gap(self) -> None:
        self.offset_gaps += 1


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
    ) -> None:
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
                counters.database_failing = False
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
                counters.database_failing = True
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


async def run_sink(
    settings: Settings,
    stop: asyncio.Event,
    counters: SinkCounters | None = None,
    *,
    method: WriteMethod = WriteMethod.COPY,
    flavour: Flavour = Flavour.POSTGRES,
    metrics: SinkMetrics | None = None,
) -> SinkCounters:
    counters = counters or SinkCounters()
    topics = settings.topics
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=GROUP_ID,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.broker_session_timeout_s * 1000),
        heartbeat_interval_ms=1000,
        max_poll_records=settings.sink_batch_max,
        fetch_max_wait_ms=settings.sink_fetch_max_wait_ms,
    )
    fetches = ContiguousFetches(
        consumer, lost_as="they were never stored", on_gap=counters.count_offset_gap
    )
    consumer.subscribe(
        [topics.readings, topics.alerts, topics.dead_letters], listener=fetches.listener
    )
    await consumer.start()
    database = _Database(settings, method, counters, stop, metrics)
    conninfo = settings.database_url_for("sink").get_secret_value()
    background = [asyncio.create_task(_maintain(conninfo, flavour, stop))]
    if metrics is not None:
        background += [
            asyncio.create_task(follow_open_alerts(conninfo, metrics, stop)),
            asyncio.create_task(
                follow_lag(
                    settings.kafka_bootstrap,
                    GROUP_ID,
                    [topics.readings, topics.alerts, topics.dead_letters],
                    metrics.lag,
                )
            ),
        ]
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            counters.polled_at = time.monotonic()
            batch = await fetches.take(fetched)
            if not batch:
                continue
            records = [r for rs in batch.values() for r in rs]
            if metrics is not None:
                metrics.batch.observe(len(records))
                for tp, rs in batch.items():
                    metrics.consumed.labels(tp.topic).inc(len(rs))
            if not await database.store(records):
                break  # stopping while the database is down: nothing committed, replayed later
            offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
            committing = time.monotonic()
            try:
                await consumer.commit(offsets)
                if metrics is not None:
                    metrics.commit.labels(GROUP_ID).observe(time.monotonic() - committing)
            except (CommitFailedError, IllegalStateError) as exc:
                # A rebalance took the partitions away: their new owner replays the batch,
                # which the natural keys make harmless.
                log.warning("offset commit refused after a rebalance (%s); batch will replay", exc)
            counters.batches += 1
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await consumer.stop()
        await database.close()
    return counters
