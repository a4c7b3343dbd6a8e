"""A stream worker that restarts recovers its per-patient state from the changelog (through
the Tansu end-offset workaround): an alert opened before the restart is resolved after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import RunningPipeline
from tests.support.devices import batch_payload, new_device, provision, spo2_series
from tests.support.pipeline import count, publish_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_detector_state_survives_a_worker_restart(pipeline: RunningPipeline) -> None:
    dsn = pipeline.stack.dsn
    broker = pipeline.stack.publisher
    device = new_device("restart")
    await provision(dsn, device)
    start = datetime.now(UTC) - timedelta(minutes=10)
    low = spo2_series(start, [85.0] * 5)
    publish_all(broker, [(device.topic, batch_payload(device, low), 5)])
    open_sql = "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s AND state = 'open'"
    await eventually(
        lambda: count(dsn, open_sql, device.patient), lambda c: c == 1, what="alert open"
    )

    worker = pipeline.component("detector")  # the role that keeps the table
    assert worker.stop() == 0, worker.log_tail()
    worker.start()

    normal = spo2_series(start + timedelta(seconds=5), [97.0] * 5, first_seq=6)
    publish_all(broker, [(device.topic, batch_payload(device, normal), 5)])
    resolved_sql = "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s AND state = 'resolved'"
    await eventually(
        lambda: count(dsn, resolved_sql, device.patient), lambda c: c == 1, timeout_s=120,
        what="alert resolved by the restarted worker",
    )  # fmt: skip
    assert (
        await count(dsn, "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s", device.patient)
        == 1
    )
    assert (
        await count(dsn, "SELECT count(*) FROM readings WHERE device_id = %s", device.device_id)
        == 20
    )
    assert "Error in recovery" not in worker.log_tail(200_000)
    pipeline.assert_all_alive()
