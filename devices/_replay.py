"""Recorded numerics (CSV) -> v1 payloads of one device: the pure half of ``veille replay``.

A CSV has one column per metric and a time column: ``minute`` or ``second`` (offsets from
the start) or ``time`` (RFC 3339). An empty cell means "not measured" and sends nothing; a 0
in a metric where 0 cannot be a measurement means "sensor off" and is sent as a
``no_signal`` reading, never as a value (MIMIC numerics, like most monitors, write 0 then).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Final

import orjson

from ._metrics import CATALOGUE

__all__ = ["MIMIC_NUMERICS_COLUMNS", "RecordedRow", "payload_for_row", "read_numerics"]

# Column -> metric for the MIMIC II numerics export (tests/data/README.md).
MIMIC_NUMERICS_COLUMNS: Final = MappingProxyType(
    {
        "hr_bpm": "heart_rate",
        "abp_sys_mmhg": "arterial_systolic_bp",
        "abp_dia_mmhg": "arterial_diastolic_bp",
        "abp_mean_mmhg": "arterial_mean_bp",
        "pulse_bpm": "pulse_rate",
        "resp_per_min": "respiration_rate",
        "spo2_pct": "spo2",
        "nbp_sys_mmhg": "systolic_bp",
        "nbp_dia_mmhg": "diastolic_bp",
        "nbp_mean_mmhg": "mean_bp",
    }
)


@dataclass(frozen=True, slots=True)
class RecordedRow:
    """One CSV row: its offset from the recording's start and the values present in it."""

    index: int
    offset: timedelta
    values: tuple[tuple[int, str, float], ...]  # (column index, metric, value)


def _column_map(header: list[str], columns: Mapping[str, str] | None) -> dict[int, str]:
    mapping = dict(columns or {})
    for name in header:
        if name in CATALOGUE:
            mapping.setdefault(name, name)
        elif name in MIMIC_NUMERICS_COLUMNS:
            mapping.setdefault(name, MIMIC_NUMERICS_COLUMNS[name])
    unknown = sorted(set(mapping.values()) - set(CATALOGUE))
    if unknown:
        raise ValueError(f"columns map to metrics not in the catalogue: {unknown}")
    return {i: mapping[name] for i, name in enumerate(header) if name in mapping}


def read_numerics(
    path: Path, *, columns: Mapping[str, str] | None = None, start: datetime | None = None
) -> Iterator[RecordedRow]:
    """Rows of ``path`` in file order; ``start`` is needed only for an RFC 3339 time column."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        time_column = next((c for c in ("minute", "second", "time") if c in header), None)
        if time_column is None:
            raise ValueError(f"{path}: no time column (minute, second or time) in {header}")
        time_index = header.index(time_column)
        metric_columns = _column_map(header, columns)
        if not metric_columns:
            raise ValueError(f"{path}: no column names a catalogue metric; pass a column map")
        for index, row in enumerate(reader):
            if not row or not row[time_index].strip():
                continue
            offset = _offset(time_column, row[time_index].strip(), start)
            values = tuple(
                (i, metric, float(row[i]))
                for i, metric in metric_columns.items()
                if i < len(row) and row[i].strip()
            )
            yield RecordedRow(index, offset, values)


def _offset(column: str, text: str, start: datetime | None) -> timedelta:
    if column == "minute":
        return timedelta(minutes=float(text))
    if column == "second":
        return timedelta(seconds=float(text))
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if start is None:
        raise ValueError("an RFC 3339 time column needs the recording start")
    return at - start


SEQ_STRIDE: Final = 1000  # seq = row * 1000 + column: stable across replays of one file


def payload_for_row(device_id: str, row: RecordedRow, measured_at: datetime) -> bytes:
    """One batch message per row, every reading at the row's time."""
    readings: list[dict[str, object]] = []
    for column, metric_name, value in row.values:
        metric = CATALOGUE[metric_name]
        reading: dict[str, object] = {
            "seq": row.index * SEQ_STRIDE + column,
            "metric": metric_name,
            "unit": metric.unit,
            "measured_at": measured_at.isoformat().replace("+00:00", "Z"),
        }
        if value == 0 and metric.no_signal_zero:
            reading["status"] = "no_signal"
        else:
            reading["value"] = value
        readings.append(reading)
    return orjson.dumps({"v": 1, "device_id": device_id, "readings": readings})
