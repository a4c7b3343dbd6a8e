"""A patient's readings are found through the devices bound to them (schema v8: readings keep
their natural key as their only index). What the clinic shows must not change: a device
moved from one patient to another shows each patient their own readings only, a patient with
two devices shows both, a GHT grant shows the shared patient's readings of every unit, and the
devices listed are never those of a patient the caller may not see."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import TupleRow

from clinic._models import Resolution
from clinic._queries import latest_readings, readings_between, rollup_series
from clinic._scope import CareScope
from store import BatchWriter, WriteMethod, add_grant, enter_care_context, migrate
from tests.integration.conftest import RunningStack
from tests.support.ward import NOW

pytestmark = pytest.mark.slow

Connection = psycopg.AsyncConnection[TupleRow]
HOUR = timedelta(hours=1)


class Moves:
    """Device ``shared`` measured patient A, then (from ``NOW - 1 h``) patient B; device
    ``second`` measured A all along; all in unit ``unit`` of ``tenant``."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tenant, self.other_tenant = f"chu-{tag}", f"chu-other-{tag}"
        self.unit, self.other_unit = f"icu-{tag}", f"cardio-{tag}"
        self.a, self.b = f"p-a-{tag}", f"p-b-{tag}"
        self.shared, self.second = f"dev-s-{tag}", f"dev-2-{tag}"
        self.moved_at = NOW - HOUR

    async def seed(self, owner: Connection) -> None:
        bindings = [
            (self.shared, self.a, NOW - 2 * HOUR, self.moved_at),
            (self.shared, self.b, self.moved_at, None),
            (self.second, self.a, NOW - 2 * HOUR, None),
        ]
        for device in (self.shared, self.second):
            current = next(p for d, p, _, until in bindings if d == device and until is None)
            await owner.execute(
                """INSERT INTO devices (device_id, tenant, device_type, care_unit,
                       patient_pseudonym, bound_since) VALUES (%s, %s, 'pulse_oximeter', %s, %s, %s)""",
                (device, self.tenant, self.unit, current, self.moved_at),
            )  # fmt: skip
        for device, patient, since, until in bindings:
            await owner.execute(
                """INSERT INTO device_bindings (device_id, tenant, care_unit, patient_pseudonym,
                       bound_from, bound_until) VALUES (%s, %s, %s, %s, %s, %s)""",
                (device, self.tenant, self.unit, patient, since, until),
            )
        rows = [
            # (minutes before NOW, device, patient, value): A on both devices, then B
            (100, self.shared, self.a, 91.0), (90, self.second, self.a, 92.0),
            (70, self.shared, self.a, 93.0), (50, self.shared, self.b, 81.0),
            (40, self.second, self.a, 94.0), (30, self.shared, self.b, 82.0),
        ]  # fmt: skip
        readings = [
            (NOW - timedelta(minutes=m), self.tenant, self.unit, patient, device, "spo2",
             value, "%", seq, NOW)
            for seq, (m, device, patient, value) in enumerate(rows)
        ]  # fmt: skip
        await BatchWriter(owner, WriteMethod.UNNEST).write(readings)


@pytest.fixture
async def moves(running_stack: RunningStack) -> Moves:
    seeded = Moves()
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        await seeded.seed(owner)
    return seeded


async def _as_clinic(
    stack: RunningStack, scope: CareScope, patient: str
) -> tuple[list[float | None], dict[str, float | None], list[str]]:
    """The patient's SpO2 values in time order, the latest of each metric, and the devices
    the function lists, as the clinic in ``scope`` sees them."""
    async with await psycopg.AsyncConnection.connect(stack.component_dsn("clinic")) as clinic:
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=scope.tenant, care_units=scope.care_units)
            between = await readings_between(
                clinic, scope, patient=patient, metric="spo2", since=NOW - 3 * HOUR,
                until=NOW + HOUR, limit=100,
            )  # fmt: skip
            latest = await latest_readings(clinic, scope, patient, NOW - 3 * HOUR)
            cur = await clinic.execute("SELECT veille_patient_devices(%s)", (patient,))
            devices = (await cur.fetchone() or ([],))[0]
    return [r.value for r in between], {r.metric: r.value for r in latest}, sorted(devices)


async def test_a_moved_device_shows_each_patient_their_own_readings(
    running_stack: RunningStack, moves: Moves
) -> None:
    unit = CareScope(moves.tenant, (moves.unit,))
    values, latest, devices = await _as_clinic(running_stack, unit, moves.a)
    assert values == [91.0, 92.0, 93.0, 94.0]
    assert latest == {"spo2": 94.0}  # the newest over both devices
    assert devices == sorted([moves.shared, moves.second])
    values, latest, devices = await _as_clinic(running_stack, unit, moves.b)
    assert values == [81.0, 82.0]
    assert latest == {"spo2": 82.0}
    assert devices == [moves.shared]


async def test_the_rollup_reads_the_patients_readings_through_their_devices(
    running_stack: RunningStack, moves: Moves
) -> None:
    scope = CareScope(moves.tenant, (moves.unit,))
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("clinic")
    ) as clinic:
        async with clinic.transaction():
            await enter_care_context(clinic, tenant=scope.tenant, care_units=scope.care_units)
            series = await rollup_series(
                clinic, scope, patient=moves.b, resolution=Resolution.MINUTE,
                since=NOW - 3 * HOUR, until=NOW + HOUR,
            )  # fmt: skip
    points = [(p.n, p.mean) for s in series for p in s.points]
    assert points == [(1, 81.0), (1, 82.0)]


async def test_other_units_see_no_devices_and_a_grant_shows_every_unit_of_the_patient(
    running_stack: RunningStack, moves: Moves
) -> None:
    for outsider in (
        CareScope(moves.tenant, (moves.other_unit,)),
        CareScope(moves.other_tenant, (moves.unit,)),
    ):
        assert await _as_clinic(running_stack, outsider, moves.a) == ([], {}, [])
    async with await psycopg.AsyncConnection.connect(
        running_stack.component_dsn("registry"), autocommit=True
    ) as registry:
        await add_grant(
            registry, patient=moves.a, to_tenant=moves.other_tenant, to_care_unit=moves.unit,
            granted_by="dr.house", reason="transfer", expires_at=NOW + 24 * HOUR,
            now=NOW - timedelta(seconds=1), max_duration=timedelta(days=30),
        )  # fmt: skip
    grantee = CareScope(moves.other_tenant, (moves.unit,))
    values, latest, devices = await _as_clinic(running_stack, grantee, moves.a)
    assert values == [91.0, 92.0, 93.0, 94.0] and latest == {"spo2": 94.0}
    assert devices == sorted([moves.shared, moves.second])
    # B, measured by a device A's grant lists, stays hidden
    assert await _as_clinic(running_stack, grantee, moves.b) == ([], {}, [])


async def test_only_the_clinic_and_the_registry_may_list_a_patients_devices(
    running_stack: RunningStack, moves: Moves
) -> None:
    for component in ("sink", "worker"):
        async with await psycopg.AsyncConnection.connect(
            running_stack.component_dsn(component), autocommit=True
        ) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute("SELECT veille_patient_devices(%s)", (moves.a,))


async def test_a_version_7_database_loses_its_patient_index_on_every_partition(
    running_stack: RunningStack,
) -> None:
    patient_index = "SELECT count(*) FROM pg_indexes WHERE indexdef LIKE %s"
    shape = "%(patient_pseudonym, metric, measured_at DESC)"
    async with await psycopg.AsyncConnection.connect(running_stack.dsn, autocommit=True) as owner:
        await owner.execute(
            "CREATE INDEX readings_patient_time ON readings "
            "(patient_pseudonym, metric, measured_at DESC)"
        )
        await owner.execute("UPDATE veille_schema SET version = 7")
        cur = await owner.execute(patient_index, (shape,))
        assert (await cur.fetchone() or (0,))[0] > 1  # the parent's and each partition's
        info = await migrate(running_stack.dsn)
        cur = await owner.execute(patient_index, (shape,))
        assert (await cur.fetchone() or (1,))[0] == 0
        cur = await owner.execute("SELECT version FROM veille_schema")
        assert (await cur.fetchone() or (0,))[0] == info.version == 8
