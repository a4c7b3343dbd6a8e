"""A per-patient threshold set with ``veille thresholds`` is applied by the running worker
within seconds, and the history keeps who changed what and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from devices import DeviceBinding, now_us
from store import load_effective_overrides, upsert_bindings
from tests.integration.conftest import RunningPipeline
from tests.support.devices import (
    TENANT,
    batch_payload,
    new_device,
    provision,
    reading,
    spo2_series,
)
from tests.support.pipeline import count, publish_all, run_veille
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_patient_threshold_is_applied_and_versioned(pipeline: RunningPipeline) -> None:
    dsn, broker = pipeline.stack.dsn, pipeline.stack.publisher
    device = new_device("thr")
    await provision(dsn, device)
    out = run_veille(pipeline.stack.env, "thresholds", "set", "spo2_low", "--tenant", TENANT, "--patient", device.patient,
                      "--limit", "94", "--clear-at", "96", "--persistence", "2", "--by", "dr-house",
                      "--reason", "COPD baseline 95 %")  # fmt: skip
    assert "version 1 set" in out

    async def applied() -> int:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return sum(o.patient == device.patient for o in await load_effective_overrides(conn))

    await eventually(applied, lambda n: n == 1, what="override stored")
    # 93 % twice: nothing by the default rule (< 90 % three times), an alert by this patient's.
    start = datetime.now(UTC) - timedelta(minutes=2)
    publish_all(
        broker, [(device.topic, batch_payload(device, spo2_series(start, [93.0, 93.0])), 2)]
    )
    sql = "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s AND rule = 'spo2_low'"
    await eventually(
        lambda: count(dsn, sql, device.patient), lambda c: c == 1, what="alert by override"
    )

    run_veille(pipeline.stack.env, "thresholds", "clear", "spo2_low", "--tenant", TENANT, "--patient", device.patient,
                "--by", "dr-cuddy")  # fmt: skip
    history = run_veille(pipeline.stack.env, "thresholds", "history", "--tenant", TENANT)
    assert "dr-house" in history and "dr-cuddy" in history and "removed" in history
    assert await applied() == 0


def observation_set(seq: int, at: datetime) -> list[dict[str, object]]:
    """A nurse's round: SpO2 97 % on 2 L/min of oxygen, every other sign normal. NEWS2 is
    2 on scale 1 (oxygen) and 5 on scale 2 (97 % on oxygen scores 3): medium only there."""
    signs = [("respiration_rate", 16.0, "/min"), ("spo2", 97.0, "%"),
             ("inhaled_oxygen_flow", 2.0, "L/min"), ("systolic_bp", 125.0, "mm[Hg]"),
             ("heart_rate", 80.0, "/min"), ("consciousness", 0.0, "{ACVPU}"),
             ("body_temperature", 37.0, "Cel")]  # fmt: skip
    return [reading(seq + i, m, v, u, at) for i, (m, v, u) in enumerate(signs)]


async def test_spo2_scale_2_prescribed_for_a_patient_changes_news2(
    pipeline: RunningPipeline,
) -> None:
    dsn, broker = pipeline.stack.dsn, pipeline.stack.publisher
    scale_2, scale_1 = new_device("obs2"), new_device("obs1")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        since = now_us() - 3_600_000_000
        await upsert_bindings(conn, [
            (DeviceBinding(d.device_id, TENANT, d.care_unit, d.patient, since), "observation_app")
            for d in (scale_2, scale_1)
        ])  # fmt: skip
    out = run_veille(pipeline.stack.env, "thresholds", "spo2-scale", "2", "--tenant", TENANT,
                     "--patient", scale_2.patient, "--by", "dr-quinn",
                     "--reason", "COPD, target 88-92 %")  # fmt: skip
    assert "scale 2" in out

    async def scale_applied() -> int:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            found = await load_effective_overrides(conn)
        return sum(o.patient == scale_2.patient and o.rule == "news2_spo2_scale" for o in found)

    await eventually(scale_applied, lambda n: n == 1, what="scale stored")
    # Two rounds 11 minutes apart: the medium band must hold 10 minutes of event time.
    start = datetime.now(UTC) - timedelta(minutes=15)
    later = start + timedelta(minutes=11)
    publish_all(broker, [
        (d.topic, batch_payload(d, observation_set(1, start) + observation_set(10, later)), 14)
        for d in (scale_2, scale_1)
    ])  # fmt: skip
    sql = "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s AND rule = 'news2'"
    await eventually(
        lambda: count(dsn, sql, scale_2.patient), lambda c: c == 1, what="NEWS2 on scale 2"
    )
    stored = "SELECT count(*) FROM readings WHERE patient_pseudonym = %s"
    await eventually(
        lambda: count(dsn, stored, scale_1.patient), lambda c: c == 14, what="scale-1 readings"
    )
    assert await count(dsn, sql, scale_1.patient) == 0  # the same vitals score 2 on scale 1
    history = run_veille(pipeline.stack.env, "thresholds", "history", "--tenant", TENANT)
    assert "scale 2" in history and "dr-quinn" in history
