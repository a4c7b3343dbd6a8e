"""FHIR export of a demo patient whose readings went through the real pipeline (MQTT broker,
gateway, Kafka, worker, sink, PostgreSQL), validated with ``fhir.resources`` (R4B)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle

from clinic._fhir_export import patient_bundle
from devices import DeviceBinding, device_topic, now_us
from store import upsert_bindings
from tests.integration.conftest import RunningPipeline
from tests.support.devices import TENANT, batch_payload, new_device, provision, reading, spo2_series
from tests.support.pipeline import count, publish_all, run_veille
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_demo_patient_exports_as_a_valid_bundle(
    pipeline: RunningPipeline, tmp_path: Path
) -> None:
    dsn, broker = pipeline.stack.dsn, pipeline.stack.publisher
    unit = f"fhir-{uuid.uuid4().hex[:8]}"
    monitor = dataclasses.replace(new_device("fhir-mon"), care_unit=unit)
    app_id = f"fhir-app-{uuid.uuid4().hex[:8]}"
    await provision(dsn, monitor)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        binding = DeviceBinding(app_id, TENANT, unit, monitor.patient, now_us() - 3_600_000_000)
        await upsert_bindings(conn, [(binding, "observation_app")])

    start = datetime.now(UTC) - timedelta(minutes=10)
    vitals_at = start + timedelta(minutes=1)
    monitor_readings = [
        *spo2_series(start, [85.0] * 5),  # opens spo2_low
        reading(20, "respiration_rate", 22, "/min", vitals_at),
        *spo2_series(vitals_at, [93.0], first_seq=21),
        reading(22, "systolic_bp", 128, "mm[Hg]", vitals_at),
        reading(23, "diastolic_bp", 82, "mm[Hg]", vitals_at),
        reading(24, "heart_rate", 115, "/min", vitals_at),
        reading(25, "body_temperature", 38.2, "Cel", vitals_at),
        # The probe slipped off: a no-signal SpO2 (0), with the pulse the oximeter still sends.
        *spo2_series(vitals_at + timedelta(seconds=30), [0.0], first_seq=26),
    ]
    app_readings = [
        reading(1, "consciousness", 0, "{ACVPU}", vitals_at),
        reading(2, "inhaled_oxygen_flow", 0, "L/min", vitals_at),
    ]
    publish_all(broker, [
        (monitor.topic, batch_payload(monitor, monitor_readings), len(monitor_readings)),
        (device_topic(TENANT, app_id),
         orjson.dumps({"v": 1, "device_id": app_id, "readings": app_readings}), len(app_readings)),
    ])  # fmt: skip
    expected = len(monitor_readings) + len(app_readings)
    await eventually(lambda: count(dsn, "SELECT count(*) FROM readings WHERE patient_pseudonym = %s", monitor.patient),
                     lambda n: n == expected, what=f"{expected} readings stored")  # fmt: skip
    await eventually(lambda: count(dsn, "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s", monitor.patient),
                     lambda n: n >= 1, what="spo2_low alert")  # fmt: skip

    out = tmp_path / "bundle.json"
    printed = run_veille(pipeline.stack.env, "fhir", "export", "--patient", monitor.patient, "--hours", "1",
                         "--out", str(out))  # fmt: skip
    assert "Bundle of" in printed
    raw = out.read_bytes()
    Bundle.model_validate_json(raw)
    assert b"NIR-" not in raw  # the national identifier never leaves patient_identities
    bundle = orjson.loads(raw)
    resources = [e["resource"] for e in bundle["entry"]]
    by_type: dict[str, list[dict]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)

    (patient,) = by_type["Patient"]
    assert patient["identifier"][0]["value"] == monitor.patient
    assert {d["identifier"][0]["value"] for d in by_type["Device"]} == {monitor.device_id, app_id}

    observations = by_type["Observation"]
    panel = [o for o in observations if o["code"]["coding"][0]["code"] == "85354-9"]
    assert len(panel) == 1
    assert [c["valueQuantity"]["value"] for c in panel[0]["component"]] == [128, 82]
    absent = [o for o in observations if "dataAbsentReason" in o]
    assert len(absent) == 1 and absent[0]["code"]["coding"][0]["code"] == "59408-5"
    assert absent[0]["dataAbsentReason"]["coding"][0]["code"] == "error"
    # Every reading is in one Observation: the panel holds two, NEWS2 is extra.
    news2 = [o for o in observations if o["id"].startswith("news2-")]
    assert len(observations) == expected - 1 + len(news2)

    # NEWS2 of the latest values: RR 22 (2), SpO2 93 (2), air (0), SBP 128 (0), HR 115 (2),
    # alert (0), 38.2 Cel (1).
    (score,) = news2
    assert score["valueInteger"] == 7
    assert score["interpretation"][0]["coding"][0]["code"] == "high"
    assert [c["valueInteger"] for c in score["component"]] == [2, 2, 0, 0, 2, 0, 1]
    assert len(score["derivedFrom"]) == 7

    flags = by_type["Flag"]
    assert any(f["code"]["coding"][0]["code"] == "spo2_low" for f in flags)

    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    base = bundle["entry"][0]["fullUrl"].rsplit("/Patient/", 1)[0]
    for ref in _references(resources):
        assert f"{base}/{ref}" in full_urls, f"{ref} does not resolve in the bundle"

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        window = {"since": start - timedelta(hours=1), "until": datetime.now(UTC)}
        outside = await patient_bundle(conn, tenant=TENANT, care_units=["another-unit"],
                                       patient=monitor.patient, **window)  # fmt: skip
        inside = await patient_bundle(conn, tenant=TENANT, care_units=[unit], patient=monitor.patient,
                                      **window)  # fmt: skip
    assert outside is None
    assert inside is not None and len(inside["entry"]) == len(bundle["entry"])
    pipeline.assert_all_alive()


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []
