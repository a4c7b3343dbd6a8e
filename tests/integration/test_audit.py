"""The audit trail against the local stack's real PostgreSQL: append-only, one linear hash
chain under concurrent writers, tampering behind the triggers found by `veille audit verify`,
and the rows the clinic (a real `veille clinic` process) and the command line write.

Tampering tests put every row back as it was before they end (the trail is the whole
database's): a later test's verification sees an intact chain again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from store import AuditEntry, record_audit
from tests.integration.conftest import RunningStack
from tests.support.clinic import running_clinic
from tests.support.patients import PASSWORD, add_nurse, seed_patient

pytestmark = pytest.mark.slow

Connection = psycopg.AsyncConnection[TupleRow]


def _superuser_url(stack: RunningStack) -> str:
    state = json.loads((stack.state_dir / "stack.json").read_text())
    port = state["services"]["postgres"]["port"]
    return f"postgresql://postgres:{state['superuser_password']}@127.0.0.1:{port}/veille"


def _veille(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env}
    return subprocess.run(
        [sys.executable, "-m", "veille", *args], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def _entry(actor: str, patient: str | None = None, n: int = 0) -> AuditEntry:
    return AuditEntry(actor=actor, actor_role="nurse", action="patient.vitals",
                      source="10.1.2.3", patient=patient, tenant="chu", detail={"n": n})  # fmt: skip


async def _rows(dsn: str, actor: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as owner:
        cur = await owner.execute(
            "SELECT action, patient_pseudonym, source, db_user, detail FROM audit_events "
            "WHERE actor = %s ORDER BY id",
            (actor,),
        )
        return await cur.fetchall()


async def _last_id(owner: Connection) -> int:
    row = await (await owner.execute("SELECT max(id) FROM audit_events")).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def test_the_trail_refuses_update_delete_and_truncate_even_to_its_owner(
    running_stack: RunningStack,
) -> None:
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic"), autocommit=True
    ) as clinic:
        await record_audit(clinic, _entry(f"nurse-{uuid.uuid4().hex[:6]}"))
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        for statement in (
            "UPDATE audit_events SET actor = 'someone-else' WHERE id = (SELECT max(id) FROM audit_events)",
            "DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)",
            "TRUNCATE audit_events",
            "DELETE FROM audit_chain_head",
        ):
            with pytest.raises(psycopg.errors.ProhibitedSqlStatementAttempted, match="append-only"):
                await owner.execute(statement.encode())


@pytest.mark.parametrize("component", ["clinic", "registry", "sink", "worker"])
async def test_no_component_reads_or_changes_the_trail(
    running_stack: RunningStack, component: str
) -> None:
    statements = [
        "SELECT count(*) FROM audit_events",
        "SELECT * FROM audit_chain_head",
        "UPDATE audit_events SET actor = 'x'",
        "DELETE FROM audit_events",
        # the trigger's columns are not a writer's to choose
        "INSERT INTO audit_events (id, actor, actor_role, action, source, row_hash) "
        "VALUES (1, 'a', 'b', 'c', 'd', '\\x00')",
    ]
    if component in ("sink", "worker"):
        statements.append(
            "INSERT INTO audit_events (actor, actor_role, action, source) VALUES ('a','b','c','d')"
        )
    for statement in statements:
        async with await psycopg.AsyncConnection.connect(
            running_stack.component_dsn(component), autocommit=True
        ) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(statement.encode())


async def test_concurrent_writers_make_one_linear_chain(running_stack: RunningStack) -> None:
    actor = f"load-{uuid.uuid4().hex[:6]}"
    per_writer = 40

    async def write(url: str, tag: str) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for n in range(per_writer):
                async with conn.transaction():
                    await record_audit(conn, _entry(actor, f"p-{tag}", n))

    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        before = await _last_id(owner)
        # A writer holding the chain's lock (its transaction open) makes the other wait.
        async with await psycopg.AsyncConnection.connect(
            running_stack.component_dsn("clinic")
        ) as first:
            await record_audit(first, _entry(actor, "p-first"))
            second = asyncio.create_task(write(running_stack.component_dsn("registry"), "second"))
            await asyncio.sleep(1.0)
            assert await _last_id(owner) == before  # nothing committed: the second waits
            await first.commit()
            await asyncio.gather(
                second,
                write(running_stack.component_dsn("clinic"), "a"),
                write(running_stack.component_dsn("registry"), "b"),
            )
        cur = await owner.execute(
            "SELECT id, prev_hash, row_hash, db_user FROM audit_events WHERE id > %s ORDER BY id",
            (before,),
        )
        rows = await cur.fetchall()
    assert [r[0] for r in rows] == list(range(before + 1, before + 2 + 3 * per_writer))
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))  # each on the previous
    assert {r[3] for r in rows} == {"veille_clinic", "veille_registry"}
    verified = _veille(running_stack, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "audit chain holds" in verified.stdout


@contextlib.asynccontextmanager
async def _triggers_off(conn: Connection) -> AsyncIterator[None]:
    """As the table's owner: the triggers disabled for one transaction."""
    async with conn.transaction():
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        yield
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")


async def test_a_row_changed_behind_the_triggers_is_named_by_verify(
    running_stack: RunningStack,
) -> None:
    actor = f"nurse-{uuid.uuid4().hex[:6]}"
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        for n in range(3):
            await record_audit(clinic, _entry(actor, "p-1", n))
            await clinic.commit()
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        cur = await owner.execute(
            "SELECT id, patient_pseudonym FROM audit_events WHERE actor = %s ORDER BY id", (actor,)
        )
        target, patient = (await cur.fetchall())[1]
        async with _triggers_off(owner):
            await owner.execute(
                "UPDATE audit_events SET patient_pseudonym = 'p-innocent' WHERE id = %s", (target,)
            )
        try:
            broken = _veille(running_stack, "audit", "verify")
            assert broken.returncode == 1, broken.stdout + broken.stderr
            assert f"audit chain broken at row {target}:" in broken.stderr
            assert "altered" in broken.stderr
        finally:
            async with _triggers_off(owner):
                await owner.execute(
                    "UPDATE audit_events SET patient_pseudonym = %s WHERE id = %s",
                    (patient, target),
                )
    assert _veille(running_stack, "audit", "verify").returncode == 0


async def test_a_row_deleted_as_superuser_in_replica_mode_is_found(
    running_stack: RunningStack,
) -> None:
    """session_replication_role = replica fires no ordinary trigger: a superuser can delete."""
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("registry")
    ) as registry:
        for n in range(3):
            await record_audit(registry, _entry(f"cli:{uuid.uuid4().hex[:6]}", None, n))
            await registry.commit()
    async with await psycopg.AsyncConnection.connect(
        _superuser_url(running_stack), autocommit=True
    ) as admin:
        target = await _last_id(admin) - 1
        cur = await admin.execute("SELECT * FROM audit_events WHERE id = %s", (target,))
        saved = await cur.fetchone()
        assert saved is not None
        columns = [d.name for d in cur.description or ()]
        async with admin.transaction():
            await admin.execute("SET LOCAL session_replication_role = replica")
            await admin.execute("DELETE FROM audit_events WHERE id = %s", (target,))
        try:
            broken = _veille(running_stack, "audit", "verify")
            assert broken.returncode == 1, broken.stdout + broken.stderr
            assert f"audit chain broken at row {target}:" in broken.stderr
            assert "missing" in broken.stderr
        finally:
            async with admin.transaction():
                await admin.execute("SET LOCAL session_replication_role = replica")
                await admin.execute(
                    f"INSERT INTO audit_events ({', '.join(columns)}) "  # noqa: S608
                    f"VALUES ({', '.join(['%s'] * len(columns))})".encode(),
                    [Jsonb(v) if c == "detail" else v
                     for c, v in zip(columns, saved, strict=True)],
                )  # fmt: skip
    assert _veille(running_stack, "audit", "verify").returncode == 0


# --- what the clinic and the command line write ---------------------------------------------


@pytest.fixture(scope="module")
def clinic_url(
    running_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with running_clinic(running_stack.env, tmp_path_factory.mktemp("clinic-audit")) as url:
        yield url


async def test_the_clinic_writes_one_row_per_read_of_a_patient(
    running_stack: RunningStack, clinic_url: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    tenant, unit, patient = f"chu-{tag}", f"icu-{tag}", f"p-{tag}"
    alert = await seed_patient(running_stack.dsn, tenant, unit, patient)
    await seed_patient(running_stack.dsn, tenant, f"other-{tag}", f"p-other-{tag}")
    nurse = await add_nurse(running_stack.dsn, tenant, unit)
    async with httpx.AsyncClient(base_url=clinic_url, timeout=30) as client:
        r = await client.post(
            "/api/v1/session", json={"tenant": tenant, "username": nurse, "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        assert await _rows(running_stack.dsn, nurse) == []  # signing in reads no patient
        r = await client.get(f"/api/v1/patients/{patient}/vitals")
        assert r.status_code == 200 and r.json()["latest"], r.text
        assert await _rows(running_stack.dsn, nurse) == [
            ("patient.vitals", patient, "127.0.0.1", "veille_clinic",
             {"hours": 6, "resolution": "1m"}),
        ]  # fmt: skip
        # Outside the nurse's units: a 404, and the transaction that would record it rolled back.
        r = await client.get(f"/api/v1/patients/p-other-{tag}/vitals")
        assert r.status_code == 404
        r = await client.post(f"/api/v1/alerts/{alert}/acknowledge")
        assert r.status_code == 202, r.text
    rows = await _rows(running_stack.dsn, nurse)
    assert [(a, p) for a, p, *_ in rows] == [
        ("patient.vitals", patient),
        ("alert.acknowledge", patient),
    ]
    assert rows[1][4] == {"alert_id": alert}
    listed = _veille(running_stack, "audit", "list", "--actor", nurse)
    assert listed.returncode == 0, listed.stderr
    assert "alert.acknowledge" in listed.stdout and "patient.vitals" in listed.stdout


async def test_the_command_line_writes_its_reads(running_stack: RunningStack) -> None:
    tag = uuid.uuid4().hex[:6]
    tenant, unit, patient = f"chu-{tag}", f"icu-{tag}", f"p-{tag}"
    await seed_patient(running_stack.dsn, tenant, unit, patient)
    exported = _veille(running_stack, "fhir", "export", "--patient", patient, "--hours", "2")
    assert exported.returncode == 0, exported.stderr
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        cur = await owner.execute(
            "SELECT actor, actor_role, action, tenant, source, db_user, detail FROM audit_events "
            "WHERE patient_pseudonym = %s",
            (patient,),
        )
        rows = await cur.fetchall()
    assert len(rows) == 1
    actor, role, action, row_tenant, source, db_user, detail = rows[0]
    assert actor.startswith("cli:") and role == "operator" and action == "fhir.export"
    assert (row_tenant, db_user, detail["care_units"]) == (tenant, "veille_registry", [unit])
    assert source.startswith("cli@")
    listed = _veille(running_stack, "audit", "list", "--patient", patient)
    assert listed.returncode == 0 and "fhir.export" in listed.stdout, listed.stderr
