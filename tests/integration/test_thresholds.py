"""A per-patient threshold set with ``veille thresholds`` is applied by the running worker
within seconds, and the history keeps who changed what and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store import load_effective_overrides
from tests.integration.conftest import RunningPipeline
from tests.support.devices import TENANT, batch_payload, new_device, provision, spo2_series
from tests.support.pipeline import count, publish_all, run_veille
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_patient_threshold_is_applied_and_versioned(pipeline: RunningPipeline) -> None:
    dsn, url = pipeline.stack.dsn, pipeline.stack.settings.mqtt_url
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
    publish_all(url, [(device.topic, batch_payload(device, spo2_series(start, [93.0, 93.0])), 2)])
    sql = "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s AND rule = 'spo2_low'"
    await eventually(
        lambda: count(dsn, sql, device.patient), lambda c: c == 1, what="alert by override"
    )

    run_veille(pipeline.stack.env, "thresholds", "clear", "spo2_low", "--tenant", TENANT, "--patient", device.patient,
                "--by", "dr-cuddy")  # fmt: skip
    history = run_veille(pipeline.stack.env, "thresholds", "history", "--tenant", TENANT)
    assert "dr-house" in history and "dr-cuddy" in history and "removed" in history
    assert await applied() == 0
