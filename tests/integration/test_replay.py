"""``veille replay`` of the real MIMIC ICU record through the running pipeline: every cell is
stored once, sensor-off zeros as no-signal readings (never 0 % SpO2), blanks not at all."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from devices import CATALOGUE, datetime_to_us
from devices._replay import read_numerics
from tests.integration.conftest import RunningPipeline
from tests.support.devices import TENANT, iso, new_device, provision
from tests.support.pipeline import count
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

MIMIC = Path(__file__).resolve().parents[1] / "data" / "mimic_s00001_numerics.csv"


def _expected() -> tuple[Counter[str], Counter[str], int]:
    """Per metric: stored values, stored no-signal readings; and implausible cells."""
    values: Counter[str] = Counter()
    no_signal: Counter[str] = Counter()
    implausible = 0
    for row in read_numerics(MIMIC):
        for _, metric, value in row.values:
            entry = CATALOGUE[metric]
            if value == 0 and entry.no_signal_zero:
                no_signal[metric] += 1
            elif entry.is_plausible(entry.to_canonical(value, entry.unit)):
                values[metric] += 1
            else:
                implausible += 1
    return values, no_signal, implausible


async def test_mimic_replay_is_stored_with_zeros_as_no_signal(pipeline: RunningPipeline) -> None:
    dsn = pipeline.stack.dsn
    device = new_device("mimic")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=40)
    await provision(dsn, device, since_us=datetime_to_us(start))
    values, no_signal, implausible = _expected()
    # The record is what we think: long arterial-line and SpO2 losses, NIBP every ~12 minutes.
    assert no_signal["arterial_systolic_bp"] > 1900 and no_signal["spo2"] > 300
    assert 100 < values["systolic_bp"] < 200

    run = subprocess.run(
        [sys.executable, "-m", "veille", "replay", str(MIMIC), "--device", device.device_id,
         "--tenant", TENANT, "--start", iso(start)],
        capture_output=True, text=True, timeout=300, env={**os.environ, **pipeline.stack.env}, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1936 rows" in run.stdout

    total = sum(values.values()) + sum(no_signal.values())
    stored_sql = "SELECT count(*) FROM readings WHERE device_id = %s"
    await eventually(
        lambda: count(dsn, stored_sql, device.device_id), lambda c: c >= total, timeout_s=120,
        what=f"{total} replayed readings",
    )  # fmt: skip
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT metric, count(value), count(*) - count(value), min(value) FROM readings "
            "WHERE device_id = %s GROUP BY metric",
            (device.device_id,),
        )
        stored = {m: (n, ns, low) for m, n, ns, low in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT count(*) FROM dead_letters WHERE device_id = %s AND reason = 'implausible'",
            (device.device_id,),
        )
        dead = (await cur.fetchone())[0]  # type: ignore[index]
        cur = await conn.execute(
            "SELECT min(measured_at), max(measured_at) FROM readings WHERE device_id = %s",
            (device.device_id,),
        )
        first, last = await cur.fetchone()  # type: ignore[misc]
    for metric in set(values) | set(no_signal):
        assert stored[metric][:2] == (values[metric], no_signal[metric]), metric
    assert stored["spo2"][2] > 0  # no SpO2 of 0 % anywhere: zeros became no-signal rows
    assert dead == implausible
    assert (first, last) == (start, start + timedelta(minutes=1935))

    # Sensor-off zeros raise no clinical alert; the long losses raise technical ones.
    async def technical() -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT metric, count(*) FROM alerts WHERE patient_pseudonym = %s "
                "AND rule = 'technical_signal_lost' GROUP BY metric",
                (device.patient,),
            )
            return dict(await cur.fetchall())

    # The record has 8 SpO2 losses of 5 minutes or more and one arterial-line loss.
    lost = await eventually(
        technical,
        lambda m: m.get("spo2", 0) >= 5 and m.get("arterial_systolic_bp", 0) >= 1,
        what="technical alerts",
    )
    assert lost["arterial_systolic_bp"] == 1
    clinical_on_zero = await count(
        dsn,
        "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s AND rule NOT LIKE 'technical%%' "
        "AND (rule LIKE 'spo2%%' OR rule LIKE 'systolic%%' OR rule LIKE 'heart_rate_low')",
        device.patient,
    )
    assert clinical_on_zero == 0
