"""``GET /api/v1/patients/{p}/fhir`` through a real ``veille clinic`` process: readings that
went through the real pipeline come back as a Bundle that ``fhir.resources`` (R4B) validates,
as ``application/fhir+json``; outside the caller's care units the patient does not exist."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle

from clinic import hash_password
from store import ClinicianRole, add_clinician
from tests.integration.conftest import RunningPipeline, RunningStack
from tests.support.clinic import running_clinic
from tests.support.devices import TENANT, batch_payload, new_device, provision, reading, spo2_series
from tests.support.pipeline import count, publish_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def clinic_url(
    running_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with running_clinic(running_stack.env, tmp_path_factory.mktemp("clinic-fhir")) as url:
        yield url


async def _token(base_url: str, dsn: str, unit: str) -> str:
    username = f"fhir-{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await add_clinician(conn, tenant=TENANT, username=username, display_name="Dr Fhir",
                            role=ClinicianRole.PHYSICIAN, password_hash=hash_password(PASSWORD),
                            care_units=[unit])  # fmt: skip
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.post(
            "/api/v1/session", json={"tenant": TENANT, "username": username, "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


async def test_the_fhir_route_serves_a_valid_bundle_of_the_callers_units_only(
    pipeline: RunningPipeline, clinic_url: str
) -> None:
    dsn = pipeline.stack.dsn
    unit = f"fhir-route-{uuid.uuid4().hex[:8]}"
    monitor = dataclasses.replace(new_device("fhir-route"), care_unit=unit)
    await provision(dsn, monitor)
    start = datetime.now(UTC) - timedelta(minutes=10)
    at = start + timedelta(minutes=1)
    readings = [
        *spo2_series(start, [85.0] * 5),  # opens spo2_low
        reading(20, "systolic_bp", 128, "mm[Hg]", at),
        reading(21, "diastolic_bp", 82, "mm[Hg]", at),
        reading(22, "body_temperature", 38.2, "Cel", at),
    ]
    publish_all(
        pipeline.stack.publisher,
        [(monitor.topic, batch_payload(monitor, readings), len(readings))],
    )
    await eventually(lambda: count(dsn, "SELECT count(*) FROM readings WHERE patient_pseudonym = %s", monitor.patient),
                     lambda n: n == len(readings), what="readings stored")  # fmt: skip
    await eventually(lambda: count(dsn, "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s", monitor.patient),
                     lambda n: n >= 1, what="spo2_low alert")  # fmt: skip

    inside = await _token(clinic_url, dsn, unit)
    outside = await _token(clinic_url, dsn, f"elsewhere-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(base_url=clinic_url, timeout=30) as client:
        url = f"/api/v1/patients/{monitor.patient}/fhir"
        r = await client.get(
            url, params={"hours": 1}, headers={"Authorization": f"Bearer {inside}"}
        )
        hidden = await client.get(url, headers={"Authorization": f"Bearer {outside}"})
        unknown = await client.get(
            "/api/v1/patients/nobody-here/fhir", headers={"Authorization": f"Bearer {inside}"}
        )
        too_far = await client.get(
            url, params={"hours": 10_000}, headers={"Authorization": f"Bearer {inside}"}
        )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/fhir+json"
    bundle = Bundle.model_validate_json(r.content)
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds.count("Patient") == 1 and "Device" in kinds and "Flag" in kinds
    # Every reading is an Observation, except the BP pair, which is one panel.
    assert kinds.count("Observation") == len(readings) - 1
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    assert unknown.status_code == 404
    assert too_far.status_code == 422
    pipeline.assert_all_alive()
