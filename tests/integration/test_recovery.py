"""``veille alerts resolve-all`` after the detectors' state was lost, on a stack of its own
(it resolves every alert of every tenant, which the shared pipeline's other tests own).

Two alerts stand for the two kinds a recovery finds: one the detector opened and still
knows, and one it does not know (an acknowledged alert inserted as the owner, as a restored
database or a rebuilt Kafka leaves it). Without ``--yes`` nothing changes; with it both are
resolved with the reason in their history and one audit row each, and a condition that
persists then opens exactly one new alert per patient and rule."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import TEST_PARTITIONS
from tests.support.devices import TENANT, batch_payload, new_device, provision, spo2_series
from tests.support.pipeline import count, publish_all, run_veille
from tests.support.waiting import eventually
from veille.publisher import simulator_endpoint
from veille.stack import LocalStack, PipelineProcesses

pytestmark = pytest.mark.slow

REASON = "drill: Kafka rebuilt, detectors' state lost"
MESSAGE = "SpO2 86 % below 90 %"
UNRESOLVED = "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s AND state <> 'resolved'"


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state_dir: Path = tmp_path_factory.mktemp("veille-recovery")
    stack = LocalStack(state_dir, partitions=TEST_PARTITIONS)
    try:
        stack.up()
        env = stack.env()
        with PipelineProcesses.for_stack(env, state_dir):
            yield env
    finally:
        stack.down(purge=True)


async def _insert_unknown_alert(dsn: str, patient: str, opened: datetime) -> str:
    """An acknowledged alert the detectors never saw, with its opening in the history."""
    alert_id = str(uuid.uuid4())
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            """INSERT INTO alerts (alert_id, tenant, care_unit, patient_pseudonym, rule, metric,
                   priority, state, opened_at, acknowledged_at, acknowledged_by, opening_value,
                   message)
               VALUES (%s, %s, 'icu', %s, 'spo2_low', 'spo2', 'high', 'acknowledged', %s, %s,
                       'nurse-7', 86, %s)""",
            (alert_id, TENANT, patient, opened, opened + timedelta(minutes=1), MESSAGE),
        )
        await conn.execute(
            """INSERT INTO alert_events (alert_id, kind, at, priority, value, message)
               VALUES (%s, 'opened', %s, 'high', 86, %s)""",
            (alert_id, opened, MESSAGE),
        )
    return alert_id


async def _unresolved_of(dsn: str, *patients: str) -> list[int]:
    return [await count(dsn, UNRESOLVED, p) for p in patients]


async def _rows(dsn: str, query: str, *params: object) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await (await conn.execute(query, params)).fetchall()


async def test_resolve_all_closes_every_open_alert_and_the_next_episode_opens_one(
    stack_env: dict[str, str],
) -> None:
    dsn = stack_env["VEILLE_DATABASE_URL"]
    broker = simulator_endpoint(stack_env)
    known, unknown = new_device("known"), new_device("unknown")
    await provision(dsn, known, unknown)
    start = datetime.now(UTC) - timedelta(minutes=5)
    publish_all(broker, [(known.topic, batch_payload(known, spo2_series(start, [85.0] * 5)), 5)])
    await eventually(lambda: count(dsn, UNRESOLVED, known.patient), lambda c: c == 1,
                     what="the detector's alert")  # fmt: skip
    orphan = await _insert_unknown_alert(dsn, unknown.patient, start - timedelta(hours=2))
    (opened,) = await _rows(
        dsn, "SELECT alert_id::text FROM alerts WHERE patient_pseudonym = %s", known.patient
    )
    ids = {str(opened[0]), orphan}

    preview = run_veille(stack_env, "alerts", "resolve-all", "--reason", REASON)
    assert all(i in preview for i in ids) and "nothing changed" in preview, preview
    assert await count(dsn, "SELECT count(*) FROM alerts WHERE state <> 'resolved'") == 2

    done = run_veille(stack_env, "alerts", "resolve-all", "--reason", REASON, "--yes")
    assert f"tenant {TENANT}: 2 alerts resolved by veille-recovery" in done, done
    await eventually(lambda: count(dsn, "SELECT count(*) FROM alerts WHERE state <> 'resolved'"),
                     lambda c: c == 0, what="both resolved by the sink")  # fmt: skip
    history = await _rows(
        dsn,
        "SELECT alert_id::text, actor, message FROM alert_events WHERE kind = 'resolved'",
    )
    assert {(i, "veille-recovery") for i in ids} == {(str(a), b) for a, b, _ in history}
    assert all(REASON in str(message) for _, _, message in history), history
    resolved_by = await _rows(dsn, "SELECT DISTINCT resolved_by FROM alerts")
    assert resolved_by == [("veille-recovery",)]
    audit = await _rows(
        dsn,
        "SELECT detail->>'alert_id', patient_pseudonym, detail->>'reason' FROM audit_events"
        " WHERE action = 'alert.resolve'",
    )
    assert sorted(audit) == sorted(
        [(str(opened[0]), known.patient, REASON), (orphan, unknown.patient, REASON)]
    )

    # The condition persists for both: one new alert each, beside the resolved one. The
    # worker may apply the resolution a moment after the sink: publish again if none opened.
    for attempt in range(4):
        at = start + timedelta(seconds=30 * (attempt + 1))
        first = 10 * (attempt + 1)
        publish_all(broker, [(d.topic, batch_payload(d, spo2_series(at, [84.0] * 5, first)), 5)
                             for d in (known, unknown)])  # fmt: skip
        try:
            await eventually(lambda: _unresolved_of(dsn, known.patient, unknown.patient),
                             lambda c: c == [1, 1], timeout_s=20, what="one new alert each")  # fmt: skip
            break
        except AssertionError:
            if attempt == 3:
                raise
    per_rule = await _rows(
        dsn,
        "SELECT patient_pseudonym, rule, count(*) FILTER (WHERE state <> 'resolved'), count(*)"
        " FROM alerts GROUP BY 1, 2 ORDER BY 1",
    )
    assert sorted(per_rule) == sorted(
        [(known.patient, "spo2_low", 1, 2), (unknown.patient, "spo2_low", 1, 2)]
    )
