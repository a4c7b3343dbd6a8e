"""Component roles and row-level security against the local stack's real PostgreSQL.

Rows of two care units (A and B) of one establishment, and of unit A of another
establishment, are written as the owner; then hand-written SQL runs as each role.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest

from store import (
    AlertEventRow,
    BatchWriter,
    Flavour,
    SchemaOptions,
    WriteMethod,
    enter_care_context,
    migrate,
    record_patient_identity,
    run_maintenance,
)
from tests.integration.conftest import RunningPipeline, RunningStack
from tests.support.pipeline import scalar
from tests.support.waiting import eventually
from tests.support.ward import NOW, PATIENT_ROWS, Ward, count_rows

pytestmark = pytest.mark.slow


_count = count_rows


async def test_the_stack_gives_each_component_its_own_role(running_stack: RunningStack) -> None:
    for component in ("sink", "worker", "registry", "clinic"):
        async with await psycopg.AsyncConnection.connect(
            running_stack.component_dsn(component)
        ) as conn:
            user = await (await conn.execute("SELECT current_user")).fetchone()
            assert user == (f"veille_{component}",)


async def test_the_clinic_sees_its_care_unit_only(running_stack: RunningStack, ward: Ward) -> None:
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=ward.tenant, care_units=(ward.unit_a,))
            for relation in PATIENT_ROWS:
                assert await _count(clinic, relation, ward, ward.patient_a) > 0, relation
                for other in ward.others():
                    assert await _count(clinic, relation, ward, other) == 0, (relation, other)
            # Whatever the SQL asks for, nothing of another unit or establishment comes back.
            cur = await clinic.execute(
                "SELECT DISTINCT tenant, care_unit FROM readings_visible UNION "
                "SELECT DISTINCT tenant, care_unit FROM alerts UNION "
                "SELECT DISTINCT tenant, care_unit FROM readings_1m_visible UNION "
                "SELECT DISTINCT tenant, care_unit FROM device_bindings"
            )
            assert await cur.fetchall() == [(ward.tenant, ward.unit_a)]


async def test_the_same_unit_name_in_another_establishment_is_not_visible(
    running_stack: RunningStack, ward: Ward
) -> None:
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=ward.other_tenant, care_units=(ward.unit_a,))
            for relation in PATIENT_ROWS:
                assert await _count(clinic, relation, ward, ward.patient_a) == 0, relation


async def test_without_a_context_the_clinic_sees_nothing(
    running_stack: RunningStack, ward: Ward
) -> None:
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic"), autocommit=True
    ) as clinic:
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=ward.tenant, care_units=(ward.unit_a,))
        # The context ended with its transaction: the pooled connection carries nothing over.
        for relation in PATIENT_ROWS:
            cur = await clinic.execute(f"SELECT count(*) FROM {relation}".encode())
            assert await cur.fetchone() == (0,), relation


async def test_the_clinic_cannot_go_around_the_policies(running_stack: RunningStack) -> None:
    """No direct read of the readings (TimescaleDB allows no RLS on a compressed hypertable,
    and its chunks would inherit a grant), of a rollup (PostgreSQL applies no RLS there) nor
    of a partition."""
    for relation in ("readings", "readings_1m", "readings_1h", "readings_default", "dead_letters"):
        async with await psycopg.AsyncConnection.connect(
            running_stack.component_dsn("clinic")
        ) as clinic:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await clinic.execute(f"SELECT count(*) FROM {relation}".encode())


async def test_the_care_context_needs_a_transaction(running_stack: RunningStack) -> None:
    from veille.errors import StoreError

    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic"), autocommit=True
    ) as clinic:
        with pytest.raises(StoreError, match="inside a transaction"):
            await enter_care_context(clinic, tenant="t", care_units=("u",))


IDENTITY_COLUMNS = ("national_id", "family_name", "given_names", "birth_date", "bed")


@pytest.mark.parametrize("component", ["sink", "worker", "registry"])
@pytest.mark.parametrize("column", IDENTITY_COLUMNS)
async def test_only_the_clinic_reads_identities(
    running_stack: RunningStack, component: str, column: str
) -> None:
    """The sink and the worker (Kafka, dead letters, metrics) and the registry (webhooks,
    operator commands) cannot read a name: none can put one anywhere."""
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn(component)
    ) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(f"SELECT {column} FROM patient_identities".encode())


async def test_the_clinic_reads_names_of_its_unit_never_national_ids(
    running_stack: RunningStack, ward: Ward
) -> None:
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=ward.tenant, care_units=(ward.unit_a,))
            cur = await clinic.execute(
                "SELECT patient_pseudonym, family_name, bed FROM patient_identities "
                "WHERE patient_pseudonym = ANY(%s)",
                (list(ward.patients.values()),),
            )
            assert await cur.fetchall() == [
                (ward.patient_a, Ward.family_name(ward.patient_a), "12B")
            ]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await clinic.execute("SELECT national_id FROM patient_identities")


async def test_the_clinic_sees_no_grant_to_another_unit(
    running_stack: RunningStack, ward: Ward
) -> None:
    """care_grants, the new table: a grant to unit B is not unit A's to read."""
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        await owner.execute(
            """INSERT INTO care_grants (grant_id, patient_pseudonym, from_tenant, to_tenant,
                   to_care_unit, granted_by, reason, expires_at)
               VALUES (gen_random_uuid(), %s, %s, %s, %s, 'op', 'test', now() + interval '1h')""",
            (ward.patients[(ward.other_tenant, ward.unit_a)], ward.other_tenant, ward.tenant,
             ward.unit_b),
        )  # fmt: skip
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        for unit, expected in ((ward.unit_a, 0), (ward.unit_b, 1)):
            async with clinic.transaction():
                await enter_care_context(clinic, tenant=ward.tenant, care_units=(unit,))
                cur = await clinic.execute(
                    "SELECT count(*) FROM care_grants WHERE to_tenant = %s", (ward.tenant,)
                )
                assert await cur.fetchone() == (expected,), unit
        for component in ("sink", "worker"):
            async with await psycopg.AsyncConnection.connect(
                running_stack.component_dsn(component)
            ) as c:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    await c.execute("SELECT count(*) FROM care_grants")


async def test_the_sink_writes_everything_and_reads_no_readings(
    running_stack: RunningStack, ward: Ward
) -> None:
    """The writer's COPY path and the maintenance, as the sink's role, for every unit."""
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("sink"), autocommit=True
    ) as sink:
        rows = [
            (NOW - timedelta(seconds=i), tenant, unit, patient, f"dev-{patient}", "spo2", 97.0,
             "%", 1000 + i, NOW)
            for (tenant, unit), patient in ward.patients.items()
            for i in range(3)
        ]  # fmt: skip
        patient = ward.patient_a
        opened = AlertEventRow(
            str(uuid.uuid4()), "opened", ward.tenant, ward.unit_a, patient, "spo2_low", "spo2",
            "high", NOW, 85.0, "low",
        )  # fmt: skip
        acknowledged = AlertEventRow(
            opened.alert_id, "acknowledged", ward.tenant, ward.unit_a, patient, "spo2_low",
            "spo2", "high", NOW + timedelta(seconds=5), 85.0, "ack", actor="nurse",
        )  # fmt: skip
        dead = (f"dl-{uuid.uuid4()}", "validate", "unknown_device", "?", "t", None, NOW, "{}")
        writer = BatchWriter(sink, WriteMethod.COPY)
        for _ in range(2):  # the second time, every row is a redelivery
            result = await writer.write(rows, [opened, acknowledged], [dead])
        assert (result.readings_inserted, result.alert_events_inserted) == (0, 0)
        report = await run_maintenance(sink, Flavour.POSTGRES, SchemaOptions())
        assert report.rollup_refreshed
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await sink.execute("SELECT count(*) FROM readings")
    stored = await scalar(
        running_stack.dsn,
        "SELECT count(*) FROM readings WHERE seq >= 1000 AND patient_pseudonym = ANY(%s)",
        list(ward.patients.values()),
    )
    assert stored == len(rows)
    state = await scalar(
        running_stack.dsn, "SELECT state FROM alerts WHERE alert_id = %s", opened.alert_id
    )
    assert state == "acknowledged"
    assert (
        await scalar(
            running_stack.dsn,
            "SELECT count(*) FROM dead_letters WHERE dead_letter_id = %s",
            dead[0],
        )
        == 1
    )


async def test_the_registry_records_identities_it_cannot_read(
    running_stack: RunningStack, ward: Ward
) -> None:
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("registry"), autocommit=True
    ) as registry:
        for _ in range(2):  # the second is a no-op, as in `veille devices bind` run again
            await record_patient_identity(
                registry, pseudonym=f"p-new-{ward.tenant}", tenant=ward.tenant, national_id="1"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await registry.execute("SELECT national_id FROM patient_identities")


async def test_the_worker_reads_the_whole_registry(running_stack: RunningStack, ward: Ward) -> None:
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("worker")
    ) as worker:
        cur = await worker.execute(
            "SELECT count(*) FROM devices WHERE patient_pseudonym = ANY(%s)",
            (list(ward.patients.values()),),
        )
        assert await cur.fetchone() == (3,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await worker.execute("SELECT count(*) FROM readings")


async def test_migrating_again_keeps_roles_and_policies(
    running_stack: RunningStack, ward: Ward
) -> None:
    await migrate(running_stack.dsn)
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=ward.tenant, care_units=(ward.unit_a,))
            assert await _count(clinic, "alerts", ward, ward.patient_a) == 1
            assert (
                await _count(clinic, "alerts", ward, ward.patients[(ward.tenant, ward.unit_b)]) == 0
            )


async def test_running_components_connect_as_their_roles(pipeline: RunningPipeline) -> None:
    """The sink keeps its connection open, the validator LISTENs to the registry."""
    await eventually(
        lambda: _connected_users(pipeline.stack.dsn),
        lambda users: {"veille_sink", "veille_worker"} <= users,
        what="the sink and the worker connected as their roles",
    )


async def _connected_users(dsn: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database()"
        )
        return {str(row[0]) for row in await cur.fetchall()}
