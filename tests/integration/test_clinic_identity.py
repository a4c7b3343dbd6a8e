"""The care team's view of who a patient is, and GHT sharing, through the clinic's HTTP API
(``veille clinic``, a real process) over the real PostgreSQL: names to the patient's care
units only; a grant opens one patient to another establishment's unit for reading, until it
is revoked; the clinic's log never carries a name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from clinic import hash_password
from store import ClinicianRole, add_clinician, add_grant, revoke_grant
from tests.integration.conftest import RunningStack
from tests.support.clinic import running_clinic
from tests.support.ward import Ward

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def clinic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clinic-identity")


@pytest.fixture(scope="module")
def clinic_url(running_stack: RunningStack, clinic_dir: Path) -> Iterator[str]:
    with running_clinic(running_stack.env, clinic_dir) as url:
        yield url


@pytest.fixture
async def ward(running_stack: RunningStack) -> AsyncIterator[Ward]:
    ward = Ward()
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        await ward.seed(owner)
        for tenant, unit in ((ward.tenant, ward.unit_a), (ward.other_tenant, ward.unit_a)):
            await add_clinician(
                owner, tenant=tenant, username=_nurse(ward, tenant), display_name="Nurse",
                role=ClinicianRole.NURSE, password_hash=hash_password(PASSWORD),
                care_units=[unit],
            )  # fmt: skip
    yield ward


def _nurse(ward: Ward, tenant: str) -> str:
    return f"nurse.{tenant}"


@asynccontextmanager
async def _signed_in(url: str, ward: Ward, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=30) as client:
        r = await client.post(
            "/session",
            json={"tenant": tenant, "username": _nurse(ward, tenant), "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        yield client


def _display(ward: Ward, patient: str) -> str:
    return f"{Ward.family_name(patient).upper()} Jeanne, born 1950-03-14, bed 12B"


async def _identity_audit(dsn: str, actor: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as owner:
        cur = await owner.execute(
            """SELECT action, patient_pseudonym, detail->'patients' FROM audit_events
               WHERE actor = %s AND action LIKE '%%identity' ORDER BY id""",
            (actor,),
        )
        return list(await cur.fetchall())


async def test_the_care_team_sees_the_name_others_do_not(
    clinic_url: str, running_stack: RunningStack, ward: Ward, clinic_dir: Path
) -> None:
    async with _signed_in(clinic_url, ward, ward.tenant) as nurse:
        r = await nurse.get("/identities", params={"patient": list(ward.patients.values())})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert [(i["patient"], i["display"]) for i in r.json()["identities"]] == [
            (ward.patient_a, _display(ward, ward.patient_a))
        ]
        r = await nurse.get(f"/patients/{ward.patient_a}/identity")
        assert r.status_code == 200 and r.json()["shared_until"] is None
        for other in ward.others():
            assert (await nurse.get(f"/patients/{other}/identity")).status_code == 404
    # Each answer that showed a name is in the audit trail; the 404s showed none.
    # (The board's list showed one patient: a row naming that patient, as the page's.)
    assert await _identity_audit(running_stack.dsn, _nurse(ward, ward.tenant)) == [
        ("patient.identity", ward.patient_a, None),
        ("patient.identity", ward.patient_a, None),
    ]
    # The name went to the HTTP answer only: the clinic's log has the pseudonyms at most.
    log = "".join(p.read_text(errors="replace") for p in clinic_dir.rglob("*.log"))
    assert ward.patient_a in log  # the access log of the requests above
    assert all(Ward.family_name(p) not in log for p in ward.patients.values())


async def test_a_grant_opens_one_patient_to_another_establishment_until_revoked(
    clinic_url: str, running_stack: RunningStack, ward: Ward
) -> None:
    a, alert_a = ward.patient_a, ward.alerts[ward.patient_a]
    patient_b = ward.patients[(ward.tenant, ward.unit_b)]
    reads = (f"/patients/{a}/identity", f"/patients/{a}/vitals", f"/alerts/{alert_a}")
    async with _signed_in(clinic_url, ward, ward.other_tenant) as other:
        for path in reads:
            assert (await other.get(path)).status_code == 404, path
        now = datetime.now(UTC)
        registry_url = running_stack.env["VEILLE_REGISTRY_DATABASE_URL"]
        async with await psycopg.AsyncConnection.connect(registry_url, autocommit=True) as reg:
            grant = await add_grant(
                reg, patient=a, to_tenant=ward.other_tenant, to_care_unit=ward.unit_a,
                granted_by="dr.house", reason="transfer", expires_at=now + timedelta(hours=2),
                now=now, max_duration=timedelta(days=30),
            )  # fmt: skip
        identity = (await other.get(f"/patients/{a}/identity")).json()
        assert identity["display"] == _display(ward, a) and identity["shared_until"] is not None
        vitals = (await other.get(f"/patients/{a}/vitals")).json()
        assert [latest["metric"] for latest in vitals["latest"]] == ["spo2"]
        assert sum(p["n"] for s in vitals["series"] for p in s["points"]) == 30
        detail = (await other.get(f"/alerts/{alert_a}")).json()
        assert [e["kind"] for e in detail["history"]] == ["opened"] and detail["readings"]
        listed = (await other.get("/alerts", params={"state": "active"})).json()["alerts"]
        assert {x["patient"] for x in listed} == {
            a,
            ward.patients[(ward.other_tenant, ward.unit_a)],
        }
        # Read only: acting on the alert or the thresholds is the patient's own unit's.
        r = await other.post(f"/alerts/{alert_a}/acknowledge")
        assert r.status_code == 403 and r.json()["error"]["code"] == "shared_patient"
        assert (await other.get(f"/patients/{a}/thresholds/spo2_low")).status_code == 404
        # Nothing else of establishment A.
        assert (await other.get(f"/patients/{patient_b}/identity")).status_code == 404
        assert (await other.get(f"/patients/{patient_b}/vitals")).status_code == 404
        async with await psycopg.AsyncConnection.connect(registry_url, autocommit=True) as reg:
            await revoke_grant(reg, grant.grant_id, revoked_by="dr.cuddy")
        for path in reads:
            assert (await other.get(path)).status_code == 404, path
        listed = (await other.get("/alerts", params={"state": "active"})).json()["alerts"]
        assert a not in {x["patient"] for x in listed}


async def test_identities_ask_for_bounded_input(clinic_url: str, ward: Ward) -> None:
    async with _signed_in(clinic_url, ward, ward.tenant) as nurse:
        many = [f"p-{uuid.uuid4().hex[:8]}" for _ in range(201)]
        assert (await nurse.get("/identities", params={"patient": many})).status_code == 422
    async with httpx.AsyncClient(base_url=f"{clinic_url}/api/v1") as anonymous:
        r = await anonymous.get(f"/patients/{ward.patient_a}/identity")
        assert r.status_code == 401
