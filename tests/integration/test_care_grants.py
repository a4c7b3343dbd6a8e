"""GHT sharing grants against the local stack's real PostgreSQL: hand-written SQL as the
clinic's role in another establishment's care context sees exactly the granted patient, until
the grant expires by itself or is revoked; ``veille grants`` and ``veille patients`` through
the command line, as the registry's role."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import TupleRow

from clinic import patient_bundle
from store import CareGrant, add_grant, enter_care_context, list_grants, revoke_grant
from tests.integration.conftest import RunningStack
from tests.support.ward import PATIENT_ROWS, Ward, count_rows
from veille.errors import StoreError

pytestmark = pytest.mark.slow

Connection = psycopg.AsyncConnection[TupleRow]
SHARED = ("readings_visible", "readings_1m_visible", "readings_1h_visible", "alerts", "alert_events",
          "patient_identities")  # fmt: skip
NOT_SHARED = ("devices", "device_bindings")  # the registry's, not the patient's record
MAX = timedelta(days=30)


async def _grant(
    stack: RunningStack, ward: Ward, *, to_unit: str | None = None, lasting: timedelta = MAX
) -> CareGrant:
    """Patient A (establishment A, unit A) shared with unit A of the other establishment."""
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(
        stack.component_dsn("registry"), autocommit=True
    ) as registry:
        return await add_grant(
            registry, patient=ward.patient_a, to_tenant=ward.other_tenant,
            to_care_unit=to_unit or ward.unit_a, granted_by="dr.house", reason="transfer",
            expires_at=now + lasting, now=now, max_duration=MAX,
        )  # fmt: skip


async def _seen_by_other(
    stack: RunningStack, ward: Ward, unit: str | None = None
) -> dict[str, int]:
    """Patient A's rows per relation, as the clinic in the other establishment's unit."""
    async with await psycopg.AsyncConnection.connect(stack.component_dsn("clinic")) as clinic:
        async with clinic.transaction():
            await enter_care_context(
                clinic, tenant=ward.other_tenant, care_units=(unit or ward.unit_a,)
            )
            return {r: await count_rows(clinic, r, ward, ward.patient_a) for r in PATIENT_ROWS}


async def test_a_grant_shows_the_patient_and_nothing_else_of_the_establishment(
    running_stack: RunningStack, ward: Ward
) -> None:
    assert set((await _seen_by_other(running_stack, ward)).values()) == {0}
    grant = await _grant(running_stack, ward)
    assert grant.from_tenant == ward.tenant and grant.granted_by == "dr.house"
    seen = await _seen_by_other(running_stack, ward)
    assert all(seen[r] > 0 for r in SHARED), seen
    assert all(seen[r] == 0 for r in NOT_SHARED), seen
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=ward.other_tenant, care_units=(ward.unit_a,))
            # Whatever the SQL asks for: its own unit, and patient A; never patient B of A.
            cur = await clinic.execute(
                """SELECT DISTINCT tenant, care_unit, patient_pseudonym FROM readings_visible UNION
                   SELECT DISTINCT tenant, care_unit, patient_pseudonym FROM alerts UNION
                   SELECT DISTINCT tenant, care_unit, patient_pseudonym FROM readings_1m_visible
                   UNION SELECT tenant, care_unit, patient_pseudonym FROM patient_identities
                   WHERE patient_pseudonym = ANY(%s)""",
                (list(ward.patients.values()),),
            )
            assert sorted(await cur.fetchall()) == sorted([
                (ward.other_tenant, ward.unit_a, ward.patients[(ward.other_tenant, ward.unit_a)]),
                (ward.tenant, ward.unit_a, ward.patient_a),
            ])  # fmt: skip
            cur = await clinic.execute(
                "SELECT grant_id::text FROM care_grants WHERE patient_pseudonym = %s",
                (ward.patient_a,),
            )
            assert await cur.fetchall() == [(grant.grant_id,)]
        # Establishment A's own clinic context does not see the grants made to others.
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=ward.tenant, care_units=(ward.unit_a,))
            cur = await clinic.execute("SELECT count(*) FROM care_grants")
            assert await cur.fetchone() == (0,)
    # Another unit of the receiving establishment sees nothing of patient A.
    assert set((await _seen_by_other(running_stack, ward, f"{ward.unit_b}-x")).values()) == {0}


async def test_the_receiving_unit_exports_the_shared_patient_as_fhir(
    running_stack: RunningStack, ward: Ward
) -> None:
    """The FHIR Bundle follows the same grant as the board: none before, the patient's
    readings and alerts after (its Devices "unknown": the registry is not shared)."""

    async def bundle() -> dict[str, Any] | None:
        async with await psycopg.AsyncConnection.connect(
            running_stack.component_dsn("clinic")
        ) as clinic:
            until = datetime.now(UTC) + timedelta(days=1)
            return await patient_bundle(
                clinic, tenant=ward.other_tenant, care_units=(ward.unit_a,),
                patient=ward.patient_a, since=until - timedelta(days=30), until=until,
            )  # fmt: skip

    assert await bundle() is None
    await _grant(running_stack, ward)
    shared = await bundle()
    assert shared is not None
    kinds = Counter(e["resource"]["resourceType"] for e in shared["entry"])
    assert kinds["Patient"] == 1 and kinds["Observation"] > 0 and kinds["Flag"] > 0, kinds
    devices = [e["resource"] for e in shared["entry"] if e["resource"]["resourceType"] == "Device"]
    assert devices and all("unknown" in json.dumps(d) for d in devices), devices


async def test_revoking_ends_it_at_once(running_stack: RunningStack, ward: Ward) -> None:
    grant = await _grant(running_stack, ward)
    assert (await _seen_by_other(running_stack, ward))["alerts"] == 1
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("registry"), autocommit=True
    ) as registry:
        revoked = await revoke_grant(registry, grant.grant_id, revoked_by="dr.cuddy")
        assert revoked.revoked_by == "dr.cuddy" and revoked.revoked_at is not None
        with pytest.raises(StoreError, match="not revoked yet"):
            await revoke_grant(registry, grant.grant_id, revoked_by="dr.cuddy")
        active = await list_grants(registry, active_only=True, patient=ward.patient_a)
        assert active == []
        assert [g.grant_id for g in await list_grants(registry, patient=ward.patient_a)] == [
            grant.grant_id
        ]
    assert set((await _seen_by_other(running_stack, ward)).values()) == {0}


async def test_a_grant_expires_by_itself(running_stack: RunningStack, ward: Ward) -> None:
    grant = await _grant(running_stack, ward, lasting=timedelta(seconds=2))
    assert (await _seen_by_other(running_stack, ward))["readings_visible"] == 30
    await asyncio.sleep(max(0.0, (grant.expires_at - datetime.now(UTC)).total_seconds()) + 0.5)
    assert set((await _seen_by_other(running_stack, ward)).values()) == {0}


async def test_an_expiry_set_in_the_past_ends_it(running_stack: RunningStack, ward: Ward) -> None:
    grant = await _grant(running_stack, ward)
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        await owner.execute(
            """UPDATE care_grants SET granted_at = now() - interval '2 days',
                   expires_at = now() - interval '1 second' WHERE grant_id = %s""",
            (grant.grant_id,),
        )
    assert set((await _seen_by_other(running_stack, ward)).values()) == {0}


async def test_a_grant_needs_a_reason_and_a_bounded_end(
    running_stack: RunningStack, ward: Ward
) -> None:
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("registry"), autocommit=True
    ) as registry:
        base = {"patient": ward.patient_a, "to_tenant": ward.other_tenant,
                "to_care_unit": ward.unit_a, "granted_by": "x", "now": now, "max_duration": MAX}  # fmt: skip
        with pytest.raises(StoreError, match="reason"):
            await add_grant(registry, **base, reason="  ", expires_at=now + MAX)  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="at most"):
            await add_grant(registry, **base, reason="r", expires_at=now + MAX * 2)  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="already past"):
            await add_grant(registry, **base, reason="r", expires_at=now)  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="no patient"):
            await add_grant(registry, **{**base, "patient": "p-nobody"}, reason="r",  # type: ignore[arg-type]
                            expires_at=now + MAX)  # fmt: skip
        # The table refuses an empty reason even from a caller that skips the check.
        with pytest.raises(psycopg.errors.CheckViolation):
            await registry.execute(
                """INSERT INTO care_grants (grant_id, patient_pseudonym, from_tenant, to_tenant,
                       to_care_unit, granted_by, reason, expires_at)
                   VALUES (gen_random_uuid(), %s, %s, %s, %s, 'x', '', now() + interval '1h')""",
                (ward.patient_a, ward.tenant, ward.other_tenant, ward.unit_a),
            )


async def _veille(stack: RunningStack, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "veille", *args, env={**os.environ, **stack.env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_grants_command_adds_lists_and_revokes(
    running_stack: RunningStack, ward: Ward
) -> None:
    code, out, err = await _veille(
        running_stack, "grants", "add", "--patient", ward.patient_a, "--to-tenant",
        ward.other_tenant, "--to-unit", ward.unit_a, "--reason", "cardiac surgery", "--for",
        "72h", "--by", "dr.wilson",
    )  # fmt: skip
    assert code == 0, err
    grant_id = out.split()[1]
    assert (await _seen_by_other(running_stack, ward))["patient_identities"] == 1
    code, out, err = await _veille(running_stack, "grants", "list", "--active", "--json")
    assert code == 0, err
    assert any(
        g["grant_id"] == grant_id and g["granted_by"] == "dr.wilson"
        and g["reason"] == "cardiac surgery"
        for g in json.loads(out)
    )  # fmt: skip
    code, out, err = await _veille(running_stack, "grants", "revoke", grant_id, "--by", "dr.w")
    assert code == 0, err
    assert set((await _seen_by_other(running_stack, ward)).values()) == {0}
    # Both in the audit trail, naming the patient, the receiving unit and who did it.
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        cur = await owner.execute(
            """SELECT action, patient_pseudonym, tenant, detail->>'to_care_unit', detail->>'by'
               FROM audit_events WHERE detail->>'grant' = %s ORDER BY id""",
            (grant_id,),
        )
        assert await cur.fetchall() == [
            ("grant.add", ward.patient_a, ward.tenant, ward.unit_a, "dr.wilson"),
            ("grant.revoke", ward.patient_a, ward.tenant, ward.unit_a, "dr.w"),
        ]
    code, _, err = await _veille(
        running_stack, "grants", "add", "--patient", ward.patient_a, "--to-tenant",
        ward.other_tenant, "--to-unit", ward.unit_a, "--reason", "x", "--for", "40d",
    )  # fmt: skip
    assert code == 2 and "at most" in err


async def test_admitting_shows_the_name_to_the_care_team_only(
    running_stack: RunningStack, ward: Ward
) -> None:
    patient = f"p-admit-{ward.tenant}"
    code, out, err = await _veille(
        running_stack, "patients", "admit", "--pseudonym", patient, "--tenant", ward.tenant,
        "--care-unit", ward.unit_b, "--family", "Durand", "--given", "Paul Émile",
        "--birth-date", "1941-07-02", "--bed", "7A",
    )  # fmt: skip
    assert code == 0, err
    assert "Durand" not in out and patient in out  # the command prints no name
    query = (
        "SELECT family_name, given_names, bed FROM patient_identities WHERE patient_pseudonym = %s"
    )
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        for unit, expected in ((ward.unit_b, [("Durand", "Paul Émile", "7A")]), (ward.unit_a, [])):
            async with clinic.transaction():
                await enter_care_context(clinic, tenant=ward.tenant, care_units=(unit,))
                cur = await clinic.execute(query.encode(), (patient,))
                assert await cur.fetchall() == expected, unit
    code, _, err = await _veille(running_stack, "patients", "discharge", "--pseudonym", patient)
    assert code == 0, err
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=ward.tenant, care_units=(ward.unit_b,))
            cur = await clinic.execute(query.encode(), (patient,))
            assert await cur.fetchall() == [("Durand", "Paul Émile", None)]
    # Another establishment cannot take the pseudonym over by admitting it.
    code, _, err = await _veille(
        running_stack, "patients", "admit", "--pseudonym", patient, "--tenant", ward.other_tenant,
        "--care-unit", ward.unit_a, "--family", "X", "--given", "Y", "--birth-date", "1990-01-01",
    )  # fmt: skip
    assert code == 2 and "another establishment" in err
