"""The alert lifecycle through the real broker, Kafka, worker, sink and database: one open
alert, escalation while nobody answers, acknowledgement by a clinician (``veille alerts``),
automatic resolution; redelivered readings open nothing new."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.integration.conftest import RunningPipeline
from tests.support.devices import batch_payload, new_device, provision, spo2_series
from tests.support.pipeline import count, publish_all, run_veille, scalar
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_open_escalate_acknowledge_resolve(pipeline: RunningPipeline) -> None:
    dsn, broker = pipeline.stack.dsn, pipeline.stack.publisher
    device = new_device("life")
    await provision(dsn, device)
    start = datetime.now(UTC) - timedelta(minutes=5)
    low = [(device.topic, batch_payload(device, spo2_series(start, [85.0] * 5)), 5)]
    publish_all(broker, low)
    alert_sql = "SELECT alert_id::text FROM alerts WHERE patient_pseudonym = %s"
    await eventually(lambda: count(dsn, alert_sql.replace("alert_id::text", "count(*)"), device.patient),
                     lambda c: c == 1, what="alert opened")  # fmt: skip
    alert_id = str(await scalar(dsn, alert_sql, device.patient))

    # Nobody answers: escalated (VEILLE_ESCALATE_AFTER_S is 6 s in the test pipeline).
    level_sql = "SELECT escalation_level FROM alerts WHERE alert_id = %s::uuid"
    await eventually(lambda: count(dsn, level_sql, alert_id), lambda level: level >= 1,
                     timeout_s=60, what="escalation")  # fmt: skip
    assert "life" not in run_veille(
        pipeline.stack.env, "alerts", "list"
    )  # pseudonyms only, never device names
    assert alert_id in run_veille(pipeline.stack.env, "alerts", "list")

    run_veille(
        pipeline.stack.env, "alerts", "ack", alert_id, "--by", "nurse-42", "--note", "on my way"
    )
    state_sql = (
        "SELECT state || '/' || coalesce(acknowledged_by, '') FROM alerts WHERE alert_id = %s::uuid"
    )
    await eventually(lambda: scalar(dsn, state_sql, alert_id), lambda s: s == "acknowledged/nurse-42",
                     what="acknowledged")  # fmt: skip
    level_at_ack = await count(dsn, level_sql, alert_id)

    normal = spo2_series(start + timedelta(seconds=5), [97.0] * 5, first_seq=6)
    publish_all(broker, [(device.topic, batch_payload(device, normal), 5)])
    await eventually(lambda: scalar(dsn, state_sql, alert_id), lambda s: str(s).startswith("resolved"),
                     what="auto-resolved")  # fmt: skip

    publish_all(broker, low)  # redelivery of the breaching readings
    sentinel = spo2_series(start + timedelta(seconds=30), [97.0], first_seq=99)
    publish_all(broker, [(device.topic, batch_payload(device, sentinel), 1)])
    await eventually(lambda: count(dsn, "SELECT count(*) FROM readings WHERE device_id = %s AND seq = 99",
                                   device.device_id), lambda c: c == 1, what="sentinel")  # fmt: skip

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT kind, actor, level FROM alert_events WHERE alert_id = %s::uuid ORDER BY recorded_at, at",
            (alert_id,),
        )
        history = await cur.fetchall()
    kinds = [kind for kind, _, _ in history]
    assert kinds[0] == "opened" and kinds[-1] == "resolved"
    assert kinds.count("opened") == 1 and kinds.count("resolved") == 1
    # The CLI acknowledges through the clinic's path: the event carries the escalation level
    # the alert had (at least 1 here), not 0.
    acks = [(actor, level) for kind, actor, level in history if kind == "acknowledged"]
    assert len(acks) == 1 and acks[0][0] == "nurse-42" and acks[0][1] >= 1, acks
    assert kinds.count("escalated") in (1, 2)
    # No escalation after the acknowledgement.
    assert await count(dsn, level_sql, alert_id) == level_at_ack
    assert (
        await count(dsn, "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s", device.patient)
        == 1
    )
    pipeline.assert_all_alive()
