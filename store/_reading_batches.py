"""Readings as the pipeline carries them, written without a Python object per row.

The sink used to turn every reading into a row tuple with two ``datetime`` objects and hand
each row to psycopg's COPY (``write_row``: one call and ten dumpers per row): with 30-reading
uploads that was most of the sink's CPU (``us_to_datetime`` alone 27 % of its samples,
docs/BENCHMARKS.md). Here a batch's readings become PostgreSQL's binary COPY tuples in one
``bytes`` object: times stay integer microseconds (shifted to PostgreSQL's 2000-01-01 epoch),
the text fields shared by a batch (tenant, unit, patient, device) are encoded once per batch,
a metric's name and unit once per writer, and each tuple is three precompiled ``struct``
packs. Format: https://www.postgresql.org/docs/current/sql-copy.html (binary format).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from devices import ReadingBatch, metric_named, us_to_datetime

__all__ = ["COPY_HEADER", "COPY_TRAILER", "ReadingBatches", "ReadingRow", "as_rows"]

ReadingRow = tuple[datetime, str, str, str, str, str, float | None, str, int, datetime]
"""measured_at, tenant, care_unit, patient_pseudonym, device_id, metric, value (None: no
signal), unit, seq, received_at"""

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # signature, flags, extension
COPY_TRAILER = struct.pack(">h", -1)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
_FIELDS = 10  # measured_at ... received_at, as READING_COLUMNS

_HEAD = struct.Struct(">hiq")  # field count, then measured_at (length 8, value)
_VALUE = struct.Struct(">id")
_NULL = struct.pack(">i", -1)
_TAIL = struct.Struct(">iqiq")  # seq (length 8, value), received_at (length 8, value)


def _text(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">i", len(data)) + data


@dataclass(slots=True)
class ReadingBatches:
    """The reading batches of one write; ``len`` counts readings."""

    batches: list[ReadingBatch] = field(default_factory=list)
    _count: int = 0
    _metric_fields: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)

    def add(self, batch: ReadingBatch) -> None:
        self.batches.append(batch)
        self._count += len(batch)

    def __len__(self) -> int:
        return self._count

    def copy_data(self) -> bytes:
        """Every reading as a binary COPY tuple, header and trailer excluded."""
        out: list[bytes] = []
        append = out.append
        head, value_of, tail = _HEAD.pack, _VALUE.pack, _TAIL.pack
        for batch in self.batches:
            shared = b"".join(
                _text(t) for t in (batch.tenant, batch.care_unit, batch.patient, batch.device_id)
            )
            for metric, value, measured, seq, received in zip(
                batch.metrics, batch.values, batch.measured_at_us, batch.seqs,
                batch.received_at_us, strict=True,
            ):  # fmt: skip
                name, unit = self._fields_of(metric)
                append(head(_FIELDS, 8, measured - _PG_EPOCH_US))
                append(shared)
                append(name)
                append(_NULL if value is None else value_of(8, value))
                append(unit)
                append(tail(8, seq, 8, received - _PG_EPOCH_US))
        return b"".join(out)

    def _fields_of(self, metric: str) -> tuple[bytes, bytes]:
        found = self._metric_fields.get(metric)
        if found is None:
            found = self._metric_fields[metric] = (_text(metric), _text(_unit_of(metric)))
        return found

    def rows(self) -> list[ReadingRow]:
        """The same readings as row tuples (the UNNEST path, where COPY is unavailable)."""
        return list(self._iter_rows())

    def _iter_rows(self) -> Iterator[ReadingRow]:
        for batch in self.batches:
            for metric, value, measured, seq, received in zip(
                batch.metrics, batch.values, batch.measured_at_us, batch.seqs,
                batch.received_at_us, strict=True,
            ):  # fmt: skip
                yield (
                    us_to_datetime(measured), batch.tenant, batch.care_unit, batch.patient,
                    batch.device_id, metric, value, _unit_of(metric), seq,
                    us_to_datetime(received),
                )  # fmt: skip


def _unit_of(metric: str) -> str:
    entry = metric_named(metric)
    return entry.unit if entry else ""


def as_rows(readings: Sequence[ReadingRow] | ReadingBatches) -> Sequence[ReadingRow]:
    return readings.rows() if isinstance(readings, ReadingBatches) else readings
