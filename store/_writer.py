"""Batched, idempotent writes: a redelivered reading, alert event or dead letter lands once.

Readings are copied straight into ``readings`` with binary COPY (about 1M rows/s here), inside
a savepoint; only a batch that hits a reading already stored (a redelivery after a crash) goes
through a temporary staging table and ``INSERT ... ON CONFLICT DO NOTHING`` on the natural
key. Where COPY is not available (the PGlite TimescaleDB build used in tests crashes on it)
``unnest`` arrays do the same job more slowly. Everything of one batch commits in one
transaction, so the caller may commit its Kafka offsets as soon as :meth:`BatchWriter.write`
returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import psycopg
from psycopg.rows import TupleRow

from ._reading_batches import COPY_HEADER, COPY_TRAILER, ReadingBatches, ReadingRow, as_rows

__all__ = [
    "AlertEventRow",
    "BatchWriter",
    "DeadLetterRow",
    "ReadingBatches",
    "ReadingRow",
    "WriteMethod",
    "WriteResult",
]

READING_COLUMNS = (
    "measured_at, tenant, care_unit, patient_pseudonym, device_id, metric, value, unit, seq, "
    "received_at"
)
_READING_TYPES = (
    "timestamptz", "text", "text", "text", "text", "text", "float8", "text", "int8", "timestamptz",
)  # fmt: skip
_STAGING_COLUMNS = ", ".join(
    f"{name} {kind}" for name, kind in zip(READING_COLUMNS.split(", "), _READING_TYPES, strict=True)
)


@dataclass(frozen=True, slots=True)
class AlertEventRow:
    alert_id: str
    kind: str  # opened | resolved
    tenant: str
    care_unit: str
    patient_pseudonym: str
    rule: str
    metric: str
    priority: str
    at: datetime
    value: float
    message: str
    actor: str | None = None
    level: int = 0


DeadLetterRow = tuple[str, str, str, str, str, str | None, datetime, str]
"""dead_letter_id, stage, reason, detail, mqtt_topic, device_id, received_at, raw"""


class WriteMethod(StrEnum):
    COPY = "copy"
    UNNEST = "unnest"


@dataclass(slots=True)
class WriteResult:
    readings_inserted: int = 0
    readings_duplicate: int = 0
    alert_events_inserted: int = 0
    dead_letters_inserted: int = 0


@dataclass(slots=True)
class BatchWriter:
    """Writes one batch in one transaction on an autocommit connection the caller owns."""

    conn: psycopg.AsyncConnection[TupleRow]
    method: WriteMethod = WriteMethod.COPY
    _staging_ready: bool = field(default=False, init=False)

    async def write(
        self,
        readings: Sequence[ReadingRow] | ReadingBatches = (),
        alert_events: Sequence[AlertEventRow] = (),
        dead_letters: Sequence[DeadLetterRow] = (),
    ) -> WriteResult:
        result = WriteResult()
        if readings and self.method is WriteMethod.COPY and not self._staging_ready:
            # Outside the batch transaction, so a refused batch cannot roll its creation back.
            # ON COMMIT DELETE ROWS: the staging table is empty at the start of every batch.
            # Columns spelled out rather than LIKE readings, which takes SELECT on readings: the
            # sink's role may only insert there.
            await self.conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS readings_staging ({_STAGING_COLUMNS}) "
                "ON COMMIT DELETE ROWS"
            )
            self._staging_ready = True
        async with self.conn.transaction():
            if readings:
                result.readings_inserted = await self._write_readings(readings)
                result.readings_duplicate = len(readings) - result.readings_inserted
            for event in alert_events:
                result.alert_events_inserted += await self._apply_alert_event(event)
            if dead_letters:
                result.dead_letters_inserted = await self._write_dead_letters(dead_letters)
        return result

    async def _write_readings(self, readings: Sequence[ReadingRow] | ReadingBatches) -> int:
        if self.method is WriteMethod.UNNEST:
            columns = list(zip(*as_rows(readings), strict=True))
            casts = ", ".join(f"%s::{t}[]" for t in _READING_TYPES)
            cur = await self.conn.execute(
                f"INSERT INTO readings ({READING_COLUMNS}) SELECT * FROM unnest({casts}) "  # noqa: S608
                "ON CONFLICT DO NOTHING",
                [list(c) for c in columns],
            )
            return cur.rowcount
        try:
            async with self.conn.transaction():  # a savepoint: a duplicate undoes this COPY only
                await self._copy_into("readings", readings)
            return len(readings)
        except psycopg.errors.UniqueViolation:
            pass  # a redelivery or a repeat within the batch: the keys decide, row by row
        await self._copy_into("readings_staging", readings)
        cur = await self.conn.execute(
            f"INSERT INTO readings ({READING_COLUMNS}) "  # noqa: S608
            f"SELECT {READING_COLUMNS} FROM readings_staging ON CONFLICT DO NOTHING"
        )
        return cur.rowcount

    async def _copy_into(self, table: str, readings: Sequence[ReadingRow] | ReadingBatches) -> None:
        async with self.conn.cursor() as cur:
            async with cur.copy(
                f"COPY {table} ({READING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                if isinstance(readings, ReadingBatches):  # the sink: bytes built per batch
                    await copy.write(COPY_HEADER + readings.copy_data() + COPY_TRAILER)
                    return
                copy.set_types(list(_READING_TYPES))
                for row in readings:
                    await copy.write_row(row)

    async def _apply_alert_event(self, e: AlertEventRow) -> int:
        """Move the alert along its lifecycle; never backwards (resolved is terminal)."""
        if e.kind == "opened":
            await self.conn.execute(
                """INSERT INTO alerts (alert_id, tenant, care_unit, patient_pseudonym, rule,
                       metric, priority, state, opened_at, opening_value, message)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, 'open', %s, %s, %s)
                   ON CONFLICT (alert_id) DO NOTHING""",
                (e.alert_id, e.tenant, e.care_unit, e.patient_pseudonym, e.rule, e.metric,
                 e.priority, e.at, e.value, e.message),
            )  # fmt: skip
        elif e.kind == "escalated":
            # Only an alert nobody acknowledged escalates; replays never lower the level.
            await self.conn.execute(
                """UPDATE alerts SET priority = %s, escalation_level = %s, updated_at = now()
                   WHERE alert_id = %s AND state = 'open' AND escalation_level < %s""",
                (e.priority, e.level, e.alert_id, e.level),
            )
        elif e.kind == "acknowledged":
            await self.conn.execute(
                """UPDATE alerts SET state = 'acknowledged', acknowledged_at = %s,
                       acknowledged_by = %s, updated_at = now()
                   WHERE alert_id = %s AND state = 'open'""",
                (e.at, e.actor, e.alert_id),
            )
        elif e.kind == "resolved":
            await self.conn.execute(
                """UPDATE alerts SET state = 'resolved', resolved_at = %s, resolved_by = %s,
                       updated_at = now()
                   WHERE alert_id = %s AND state <> 'resolved'""",
                (e.at, e.actor, e.alert_id),
            )
        cur = await self.conn.execute(
            """INSERT INTO alert_events (alert_id, kind, at, priority, level, actor, value, message)
               SELECT %s, %s, %s, %s, %s, %s, %s, %s
               WHERE EXISTS (SELECT 1 FROM alerts WHERE alert_id = %s)
               ON CONFLICT (alert_id, kind, at) DO NOTHING""",
            (e.alert_id, e.kind, e.at, e.priority, e.level, e.actor, e.value, e.message,
             e.alert_id),
        )  # fmt: skip
        return cur.rowcount

    async def _write_dead_letters(self, rows: Sequence[DeadLetterRow]) -> int:
        inserted = 0
        async with self.conn.cursor() as cur:
            for row in rows:
                await cur.execute(
                    """INSERT INTO dead_letters (dead_letter_id, stage, reason, detail, mqtt_topic,
                           device_id, received_at, raw)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (dead_letter_id) DO NOTHING""",
                    row,
                )
                inserted += cur.rowcount
        return inserted
