"""Realistic bad input through the real pipeline: Mosquitto, the gateway, Tansu, the worker,
the sink and PostgreSQL, all as separate processes.

Each bad message is published over MQTT between valid readings of the same provisioned
device. It must end in ``dead_letters`` with the reason the catalogue gives (or be stored,
where docs/HOSTILE_INPUT.md says it is accepted); every valid reading around it is stored
exactly once, and every component is still alive at the end.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from devices import now_us
from ingest import MAX_PAYLOAD_BYTES
from tests.integration.conftest import TEST_PARTITIONS, RunningPipeline, RunningStack
from tests.support import devices as test_devices
from tests.support.devices import iso, new_device, provision, reading
from tests.support.pipeline import count, mosquitto_client_args, publish_all
from tests.support.waiting import eventually
from veille.stack import LocalStack, PipelineProcesses

pytestmark = pytest.mark.slow

MAX_AGE = timedelta(days=7)  # VEILLE_MAX_AGE_S's default: the stack below does not change it


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPipeline]:
    """A stack and pipeline of this module's own, as tests/integration/conftest.py builds them:
    its session fixtures, imported here, would keep a second stack running until the session
    ends. Everything is stopped by PID on the way out, also when a test fails."""
    state_dir = tmp_path_factory.mktemp("veille-catalogue")
    stack = LocalStack(state_dir, partitions=TEST_PARTITIONS)
    try:
        stack.up()
        running = RunningStack(stack, stack.env(), state_dir)
        with PipelineProcesses.for_stack(running.env, state_dir) as processes:
            yield RunningPipeline(running, tuple(processes.components))
    finally:
        stack.down(purge=True)


@dataclass(frozen=True)
class Case:
    name: str
    payload: bytes
    reason: str | None  # None: accepted and stored (its seq is ``stored_seq``)
    stored_seq: int | None = None


def _single(device: str, seq: int, at: datetime, **changes: object) -> dict[str, object]:
    return {"v": 1, "device_id": device, **reading(seq, "heart_rate", 71, "/min", at), **changes}


def catalogue(device: test_devices.TestDevice, now: datetime) -> list[Case]:
    """The bad input a hospital's devices and networks really produce, with its outcome."""
    me = device.device_id
    at = now - timedelta(seconds=30)

    def body(seq: int, **changes: object) -> bytes:
        return orjson.dumps(_single(me, seq, at, **changes))

    return [
        Case("spoofed device id", orjson.dumps(_single("ox-9999", 901, at)), "device_mismatch"),
        Case("older than VEILLE_MAX_AGE_S", body(902, measured_at=iso(now - MAX_AGE - timedelta(hours=1))), "too_old"),
        Case("unknown payload version", body(903, v=2), "unknown_version"),
        Case("over the size limit", body(904)[:-1] + b',"pad":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}', "too_large"),
        Case("empty payload", b"", "undecodable"),
        Case("trailing newline", body(905) + b"\n", None, stored_seq=905),
        Case("NUL byte", body(906).replace(b'"v":1', b'"v":1\x00'), "undecodable"),
        Case("escaped NUL in the metric", body(907, metric="heart_rate\x00"), "unknown_metric"),
        Case("NaN literal", body(908).replace(b'"value":71', b'"value":NaN'), "undecodable"),
        Case("repeated key", body(909).replace(b'"value":71', b'"value":71,"value":300'), "duplicate_key"),
        Case("nested 300 levels", b"[" * 300 + b"]" * 300, "schema"),
        Case("time off the calendar in UTC", body(910, measured_at="9999-12-31T23:59:59-14:00"), "schema"),
        Case("Unix time", body(911, measured_at=int(at.timestamp())), "schema"),
        Case("SQL in the metric", body(912, metric="'; DROP TABLE readings; --"), "unknown_metric"),
    ]  # fmt: skip


async def _stored(dsn: str, device: str) -> dict[int, int]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT seq, count(*) FROM readings WHERE device_id = %s GROUP BY seq", (device,)
        )
        return {seq: n for seq, n in await cur.fetchall()}


async def _dead(dsn: str, device: str) -> list[tuple[str, str, str, str]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT reason, stage, detail, raw FROM dead_letters WHERE device_id = %s",
            (device,),
        )
        return await cur.fetchall()


def _mosquitto_pub_stdin(pipeline: RunningPipeline, topic: str, payload: bytes) -> None:
    """A real client that sends stdin as it is, trailing newline included (as paho_c_pub
    and shell pipelines do)."""
    mosquitto_pub = shutil.which("mosquitto_pub")
    assert mosquitto_pub, "mosquitto-clients is part of the bootstrap"
    subprocess.run(
        [mosquitto_pub, *mosquitto_client_args(pipeline.stack.publisher), "-q", "1",
         "-t", topic, "-s"],
        input=payload, check=True, timeout=30,
    )  # fmt: skip


async def test_bad_input_catalogue(pipeline: RunningPipeline) -> None:
    dsn = pipeline.stack.dsn
    device = new_device("cat")
    await provision(dsn, device, since_us=now_us() - 30 * 86_400_000_000)
    now = datetime.now(UTC)
    cases = catalogue(device, now)
    # The first valid reading was measured 3 days ago: it is replayed at the end.
    valid = [
        orjson.dumps(_single(device.device_id, seq, now - timedelta(days=3 if seq == 1 else 0,
                                                                    seconds=120 - seq)))
        for seq in range(1, len(cases) + 2)
    ]  # fmt: skip
    messages: list[tuple[str, bytes, int]] = [(device.topic, valid[0], 1)]
    for case, after in zip(cases, valid[1:], strict=True):
        if case.name == "trailing newline":
            _mosquitto_pub_stdin(pipeline, device.topic, case.payload)
        else:
            messages.append((device.topic, case.payload, 1))
        messages.append((device.topic, after, 1))
    publish_all(pipeline.stack.publisher, messages)

    expected_stored = {seq: 1 for seq in range(1, len(valid) + 1)}
    expected_stored |= {c.stored_seq: 1 for c in cases if c.stored_seq is not None}
    expected_dead = Counter(c.reason for c in cases if c.reason is not None)
    await eventually(
        lambda: _stored(dsn, device.device_id), lambda s: s == expected_stored,
        timeout_s=90, what="valid readings stored once each",
    )  # fmt: skip
    dead = await eventually(
        lambda: _dead(dsn, device.device_id),
        lambda rows: Counter(r[0] for r in rows) == expected_dead,
        timeout_s=60, what=f"dead letters {dict(expected_dead)}",
    )  # fmt: skip

    by_reason = {reason: (stage, detail, raw) for reason, stage, detail, raw in dead}
    assert all(detail.strip() for _, _, detail, _ in dead)
    assert "'ox-9999'" in by_reason["device_mismatch"][1]
    assert "old" in by_reason["too_old"][1]
    assert "version 2" in by_reason["unknown_version"][1]
    assert str(MAX_PAYLOAD_BYTES) in by_reason["too_large"][1]
    assert "repeats the key 'value'" in by_reason["duplicate_key"][1]
    assert by_reason["duplicate_key"][0] == "gateway"
    nul_rows = [r for r in dead if r[0] in ("undecodable", "unknown_metric")]
    assert any("\\x00" in raw or "\\u0000" in raw for _, _, _, raw in nul_rows)
    schema = sorted(detail for reason, _, detail, _ in dead if reason == "schema")
    assert any("levels deep to be carried" in d for d in schema)
    assert any("years 1 to 9999" in d for d in schema)
    assert any("RFC 3339" in d for d in schema)

    # Replayed: the same bytes again, much later. A fresh reading follows it on the same
    # device (same Kafka partition, in order): once that one is stored, the replay was seen.
    sentinel = orjson.dumps(_single(device.device_id, 999, now))
    publish_all(
        pipeline.stack.publisher,
        [(device.topic, valid[0], 1), (device.topic, sentinel, 1)],
    )
    await eventually(
        lambda: _stored(dsn, device.device_id), lambda s: 999 in s,
        timeout_s=60, what="the reading sent after the replay",
    )  # fmt: skip
    assert await _stored(dsn, device.device_id) == expected_stored | {999: 1}
    assert await count(
        dsn, "SELECT count(*) FROM dead_letters WHERE device_id = %s", device.device_id
    ) == len(dead)
    pipeline.assert_all_alive()  # the 300-level payload used to stop the gateway for good
