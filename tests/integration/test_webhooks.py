"""Webhook delivery end to end: an alert raised by the real pipeline reaches a real HTTP
receiver (a socket on 127.0.0.1), signed; a 500 is retried with backoff and logged; a killed
and restarted dispatcher, and the same event on Kafka twice, deliver nothing twice."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaProducer

from clinic._webhooks import verify_signature
from devices import AlertEvent, AlertEventKind, Priority
from tests.integration.conftest import RunningPipeline
from tests.support.devices import TENANT, batch_payload, new_device, provision, spo2_series
from tests.support.pipeline import publish_all, run_veille, scalar
from tests.support.waiting import eventually
from tests.support.webhooks import Receiver, running_receiver, start_dispatcher, subscribe
from veille.stack import ComponentProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


async def _delivery(dsn: str, subscription: str, alert_id: str, kind: str) -> tuple | None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            """SELECT id, attempt, status, http_status, error, delivered_at IS NOT NULL
               FROM webhook_deliveries WHERE subscription = %s::uuid AND alert_id = %s::uuid
                 AND event_kind = %s""",
            (subscription, alert_id, kind),
        )
        rows = await cur.fetchall()
    assert len(rows) <= 1, f"{len(rows)} deliveries of one event to one subscription"
    return rows[0] if rows else None


async def test_signed_delivery_retry_log_and_no_duplicate_after_restart(
    pipeline: RunningPipeline, receiver: Receiver, tmp_path: Path
) -> None:
    env, dsn = pipeline.stack.env, pipeline.stack.dsn
    unit = f"wh-{uuid.uuid4().hex[:8]}"
    device = dataclasses.replace(new_device("wh"), care_unit=unit)
    await provision(dsn, device)
    sub_a, secret_a = subscribe(env, unit, receiver.url("/pager"))
    sub_b, secret_b = subscribe(env, unit, receiver.url("/messaging"))
    secrets = {"/pager": secret_a, "/messaging": secret_b}

    receiver.failing.set()
    first = start_dispatcher(pipeline, tmp_path, "webhooks-1")
    second: ComponentProcess | None = None
    try:
        readings = spo2_series(datetime.now(UTC) - timedelta(minutes=5), [85.0] * 5)
        publish_all(pipeline.stack.publisher, [(device.topic, batch_payload(device, readings), 5)])
        alert_id = str(await eventually(
            lambda: scalar(dsn, "SELECT alert_id::text FROM alerts WHERE patient_pseudonym = %s", device.patient),
            lambda a: a is not None, what="alert opened"))  # fmt: skip

        # The receiver answers 500: the attempt is logged and a retry is scheduled.
        failed = await eventually(lambda: _delivery(dsn, sub_a, alert_id, "opened"),
                                  lambda row: row is not None and row[1] >= 1, what="a failed attempt")  # fmt: skip
        _, _, status, http_status, error, _ = failed
        assert (status, http_status) == ("pending", 500) and error.startswith("HTTP 500")

        receiver.failing.clear()
        for sub in (sub_a, sub_b):
            row = await eventually(lambda sub=sub: _delivery(dsn, sub, alert_id, "opened"),
                                   lambda r: r is not None and r[2] == "delivered", what="delivered")  # fmt: skip
            _, attempts, _, http_status, error, delivered = row
            assert attempts >= 2 and http_status == 200 and error is None and delivered

        # Every request is signed with its subscription's secret, recent, and for this event.
        opened = [r for r in receiver.snapshot() if orjson.loads(r.body)["alert"]["id"] == alert_id
                  and orjson.loads(r.body)["type"] == "alert.opened"]  # fmt: skip
        assert {r.answered for r in opened if r.path == "/pager"} == {500, 200}
        for r in opened:
            assert r.headers["Content-Type"] == "application/json"
            assert verify_signature(secrets[r.path], r.body, r.headers["X-Veille-Timestamp"],
                                    r.headers["X-Veille-Signature"], now_s=time.time())  # fmt: skip
            assert not verify_signature(secrets[r.path], r.body + b" ", r.headers["X-Veille-Timestamp"],
                                        r.headers["X-Veille-Signature"], now_s=time.time())  # fmt: skip
        body = orjson.loads(opened[-1].body)
        assert body["alert"]["patient"] == device.patient and body["alert"]["care_unit"] == unit
        assert body["alert"]["rule"] == "spo2_low"
        # Retries of one delivery carry the same X-Veille-Delivery id, distinct per subscription.
        ids = {
            path: {r.headers["X-Veille-Delivery"] for r in opened if r.path == path}
            for path in secrets
        }
        assert [len(v) for v in ids.values()] == [1, 1] and ids["/pager"] != ids["/messaging"]

        # A crash (SIGKILL), the same event on Kafka twice, then a restart.
        first.kill()
        event = AlertEvent(alert_id, AlertEventKind.OPENED, TENANT, unit, device.patient, "spo2_low", "spo2",
                           Priority.HIGH, 0, 85.0, "")  # fmt: skip
        stored_at_us = await scalar(
            dsn, "SELECT (extract(epoch FROM at) * 1000000)::bigint FROM alert_events "
                 "WHERE alert_id = %s::uuid AND kind = 'opened'", alert_id)  # fmt: skip
        event = dataclasses.replace(event, at_us=int(stored_at_us))
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.stack.settings.kafka_bootstrap, acks="all",
                                    enable_idempotence=False)  # fmt: skip
        await producer.start()
        try:
            for _ in range(2):
                await producer.send_and_wait(
                    pipeline.stack.settings.topics.alerts,
                    key=device.patient.encode(),
                    value=event.to_json(),
                )
        finally:
            await producer.stop()
        second = start_dispatcher(pipeline, tmp_path, "webhooks-2")
        # A new event after the duplicates (same key, same partition): once it is delivered,
        # the restarted dispatcher has read past them.
        run_veille(env, "alerts", "ack", alert_id, "--by", "nurse-7")
        for sub in (sub_a, sub_b):
            await eventually(lambda sub=sub: _delivery(dsn, sub, alert_id, "acknowledged"),
                             lambda r: r is not None and r[2] == "delivered", what="acknowledgement delivered")  # fmt: skip
        after = [r for r in receiver.snapshot() if orjson.loads(r.body)["alert"]["id"] == alert_id
                 and orjson.loads(r.body)["type"] == "alert.opened"]  # fmt: skip
        assert after == opened  # nothing sent again for the opened event
        for sub in (sub_a, sub_b):
            assert (await _delivery(dsn, sub, alert_id, "opened"))[2] == "delivered"
        log = run_veille(env, "webhooks", "deliveries", "--subscription", sub_a)
        assert "delivered" in log and "acknowledged" in log
        assert second.alive(), second.log_tail()
    finally:
        first.stop()
        if second is not None:
            second.stop()
