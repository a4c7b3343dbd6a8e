"""The device registry end to end: the CLI provisions, binds and revokes; readings through
the real broker are kept or refused by what the registry says, within seconds of a change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import orjson
import psycopg
import pytest

from devices import pseudonymise
from store import verify_credential
from tests.integration.conftest import RunningPipeline
from tests.support.devices import TENANT, iso
from tests.support.pipeline import count, publish_all, run_veille
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


def _msg(
    device: str, seq: int, metric: str, value: object, unit: str, at: datetime, **extra: object
) -> tuple[str, bytes, int]:
    body = {"v": 1, "device_id": device, "seq": seq, "metric": metric, "value": value, "unit": unit,
            "measured_at": iso(at), **extra}  # fmt: skip
    return f"veille/v1/{TENANT}/{device}/readings", orjson.dumps(body), 1


async def test_registry_decides_what_is_stored(pipeline: RunningPipeline) -> None:
    dsn = pipeline.stack.dsn
    tag = uuid.uuid4().hex[:8]
    oximeter, cuff, stolen, stranger = (f"ox-{tag}", f"bp-{tag}", f"st-{tag}", f"xx-{tag}")
    national_id = f"2 84 05 75 {tag}"
    since = datetime.now(UTC) - timedelta(minutes=30)

    registry = partial(run_veille, pipeline.stack.env, "devices")
    out = registry("add", oximeter, "--type", "pulse_oximeter", "--tenant", TENANT)
    credential = out.split("credential (shown once, store it in the device): ")[1].strip()
    registry("add", cuff, "--type", "bp_cuff", "--tenant", TENANT)
    registry("add", stolen, "--type", "pulse_oximeter", "--tenant", TENANT)
    for device in (oximeter, cuff, stolen):
        registry("bind", device, "--patient", national_id, "--care-unit", "pneumology",
                "--since", iso(since))  # fmt: skip
    registry("revoke", stolen)

    pseudonym = pseudonymise(national_id, b"veille-local-development-key")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT credential_hash FROM devices WHERE device_id = %s", (oximeter,)
        )
        stored_hash = (await cur.fetchone())[0]  # type: ignore[index]
        cur = await conn.execute(
            "SELECT national_id FROM patient_identities WHERE patient_pseudonym = %s", (pseudonym,)
        )
        identity = await cur.fetchone()
        cur = await conn.execute(
            "SELECT count(*) FROM readings WHERE patient_pseudonym = %s", (national_id,)
        )
        leaked = (await cur.fetchone())[0]  # type: ignore[index]
    assert credential not in stored_hash and verify_credential(credential, stored_hash)
    assert identity == (national_id,) and leaked == 0
    listing = registry("list", "--tenant", TENANT, "--json")
    assert oximeter in listing and '"revoked"' in listing

    at = datetime.now(UTC) - timedelta(minutes=1)
    messages = [
        _msg(oximeter, 1, "spo2", 96, "%", at),  # valid
        _msg(oximeter, 2, "pulse_rate", 71, "/min", at),  # valid
        _msg(
            oximeter, 3, "spo2", None, "%", at + timedelta(seconds=1), status="no_signal"
        ),  # stored, no value
        _msg(oximeter, 4, "spo2", 0, "%", at + timedelta(seconds=2)),  # probe off: no signal
        _msg(cuff, 1, "systolic_bp", 16.0, "kPa", at),  # non-canonical unit -> 120 mm[Hg]
        _msg(cuff, 2, "spo2", 97, "%", at),  # a cuff does not measure SpO2
        _msg(oximeter, 5, "spo2", 97, "%", since - timedelta(minutes=5)),  # before the binding
        _msg(stolen, 1, "spo2", 95, "%", at),  # revoked
        _msg(stranger, 1, "spo2", 95, "%", at),  # never provisioned
    ]
    publish_all(pipeline.stack.publisher, messages)

    devices = [oximeter, cuff, stolen, stranger]
    await eventually(
        lambda: count(dsn, "SELECT count(*) FROM readings WHERE device_id = ANY(%s)", devices),
        lambda c: c >= 5, what="5 stored readings",
    )  # fmt: skip
    await eventually(
        lambda: count(dsn, "SELECT count(*) FROM dead_letters WHERE device_id = ANY(%s)", devices),
        lambda c: c >= 4, what="4 dead letters",
    )  # fmt: skip
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT device_id, seq, metric, value, unit, patient_pseudonym FROM readings "
            "WHERE device_id = ANY(%s) ORDER BY device_id DESC, seq", (devices,),
        )  # fmt: skip
        stored = await cur.fetchall()
        cur = await conn.execute(
            "SELECT device_id, reason FROM dead_letters WHERE device_id = ANY(%s) ORDER BY reason",
            (devices,),
        )
        dead = await cur.fetchall()
    assert stored == [
        (oximeter, 1, "spo2", 96.0, "%", pseudonym),
        (oximeter, 2, "pulse_rate", 71.0, "/min", pseudonym),
        (oximeter, 3, "spo2", None, "%", pseudonym),
        (oximeter, 4, "spo2", None, "%", pseudonym),
        (cuff, 1, "systolic_bp", 120.0, "mm[Hg]", pseudonym),
    ]
    assert dead == [
        (oximeter, "before_binding"),
        (stolen, "device_revoked"),
        (cuff, "metric_not_allowed"),
        (stranger, "unknown_device"),
    ]

    # Revoking takes effect at once (LISTEN/NOTIFY), not at the next timer.
    registry("revoke", oximeter)
    publish_all(pipeline.stack.publisher, [_msg(oximeter, 6, "spo2", 95, "%", datetime.now(UTC))])
    await eventually(
        lambda: count(dsn, "SELECT count(*) FROM dead_letters WHERE device_id = %s AND reason = 'device_revoked'", oximeter),
        lambda c: c == 1, timeout_s=30, what="revocation applied",
    )  # fmt: skip
    assert (
        await count(dsn, "SELECT count(*) FROM readings WHERE device_id = %s AND seq = 6", oximeter)
        == 0
    )
