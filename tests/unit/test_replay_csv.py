"""Recorded CSV -> payloads: blanks are not sent, sensor-off zeros are no-signal readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from devices._replay import SEQ_STRIDE, payload_for_row, read_numerics

MIMIC = Path(__file__).resolve().parents[1] / "data" / "mimic_s00001_numerics.csv"
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_mimic_rows_columns_and_blanks() -> None:
    rows = list(read_numerics(MIMIC))
    assert len(rows) == 1936
    assert rows[-1].offset == timedelta(minutes=1935)
    first = {metric: value for _, metric, value in rows[0].values}
    # minute 0: hr 0, abp 0/0/0, pulse 0, resp 23, spo2 0; NIBP blank (not measured)
    assert first == {
        "heart_rate": 0.0, "arterial_systolic_bp": 0.0, "arterial_diastolic_bp": 0.0,
        "arterial_mean_bp": 0.0, "pulse_rate": 0.0, "respiration_rate": 23.0, "spo2": 0.0,
    }  # fmt: skip
    nibp_rows = [r for r in rows if any(m == "systolic_bp" for _, m, _ in r.values)]
    assert 100 < len(nibp_rows) < 200


def test_payload_sends_zeros_as_no_signal_and_keeps_values() -> None:
    row = next(iter(read_numerics(MIMIC)))
    payload = orjson.loads(payload_for_row("mon-1", row, T0))
    readings = {r["metric"]: r for r in payload["readings"]}
    assert payload["v"] == 1 and payload["device_id"] == "mon-1"
    assert readings["spo2"] == {
        "seq": 7, "metric": "spo2", "unit": "%", "measured_at": "2026-01-05T00:00:00Z",
        "status": "no_signal",
    }  # fmt: skip
    assert readings["respiration_rate"]["value"] == 23.0
    assert "status" not in readings["respiration_rate"]


def test_seq_is_stable_and_unique(tmp_path: Path) -> None:
    rows = list(read_numerics(MIMIC))
    seqs = [
        r["seq"]
        for row in rows[:50]
        for r in orjson.loads(payload_for_row("m", row, T0))["readings"]
    ]
    assert len(seqs) == len(set(seqs))
    assert seqs[0] == 0 * SEQ_STRIDE + 1  # row 0, column 1 (column 0 is the minute)


def test_generic_csv_with_catalogue_names_and_seconds(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    path.write_text("second,heart_rate,step_count\n0,70,0\n30,,12\n")
    rows = list(read_numerics(path))
    assert [(r.offset, [(m, v) for _, m, v in r.values]) for r in rows] == [
        (timedelta(0), [("heart_rate", 70.0), ("step_count", 0.0)]),
        (timedelta(seconds=30), [("step_count", 12.0)]),
    ]
    # 0 steps is a measurement, not a lost signal.
    readings = orjson.loads(payload_for_row("w", rows[0], T0))["readings"]
    assert readings[1]["value"] == 0.0 and "status" not in readings[1]


def test_csv_without_time_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("heart_rate\n70\n")
    with pytest.raises(ValueError, match="no time column"):
        list(read_numerics(path))


def test_column_map_must_name_catalogue_metrics(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    path.write_text("minute,HR\n0,70\n")
    with pytest.raises(ValueError, match="not in the catalogue"):
        list(read_numerics(path, columns={"HR": "heartrate"}))
    rows = list(read_numerics(path, columns={"HR": "heart_rate"}))
    assert rows[0].values == ((1, "heart_rate", 70.0),)
