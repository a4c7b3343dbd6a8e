"""Rows of two care units (A and B) of one establishment and of unit A of another, written
as the owner, for the tests of roles, row-level security and GHT sharing grants."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg.rows import TupleRow

from store import BatchWriter, WriteMethod

__all__ = ["NOW", "PATIENT_ROWS", "Ward", "count_rows"]

Connection = psycopg.AsyncConnection[TupleRow]
NOW = datetime.now(UTC).replace(microsecond=0)


class Ward:
    """One establishment's units A and B, and another establishment's unit A, each with one
    patient, a bound device, readings, an alert with its event and an identity."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tenant, self.other_tenant = f"chu-{tag}", f"chu-other-{tag}"
        self.unit_a, self.unit_b = f"icu-{tag}", f"cardio-{tag}"
        # (tenant, unit) -> patient
        self.patients = {
            (self.tenant, self.unit_a): f"p-a-{tag}",
            (self.tenant, self.unit_b): f"p-b-{tag}",
            (self.other_tenant, self.unit_a): f"p-x-{tag}",
        }
        self.alerts = {patient: str(uuid.uuid4()) for patient in self.patients.values()}

    @staticmethod
    def family_name(patient: str) -> str:
        return f"Martin-{patient}"

    @property
    def patient_a(self) -> str:
        return self.patients[(self.tenant, self.unit_a)]

    def others(self) -> list[str]:
        """Patients the context (tenant, unit A) must not see."""
        return [p for p in self.patients.values() if p != self.patient_a]

    async def seed(self, owner: Connection) -> None:
        for (tenant, unit), patient in self.patients.items():
            device = f"dev-{patient}"
            await owner.execute(
                """INSERT INTO devices (device_id, tenant, device_type, care_unit,
                       patient_pseudonym, bound_since) VALUES (%s, %s, 'pulse_oximeter', %s, %s, %s)""",
                (device, tenant, unit, patient, NOW - timedelta(hours=2)),
            )
            await owner.execute(
                """INSERT INTO device_bindings (device_id, tenant, care_unit, patient_pseudonym,
                       bound_from) VALUES (%s, %s, %s, %s, %s)""",
                (device, tenant, unit, patient, NOW - timedelta(hours=2)),
            )
            await owner.execute(
                """INSERT INTO patient_identities (patient_pseudonym, tenant, national_id,
                       family_name, given_names, birth_date, care_unit, bed)
                   VALUES (%s, %s, %s, %s, 'Jeanne', %s, %s, '12B')""",
                (patient, tenant, f"NIR-{patient}", self.family_name(patient),
                 date(1950, 3, 14), unit),
            )  # fmt: skip
            rows = [
                (NOW - timedelta(minutes=90 - i), tenant, unit, patient, device, "spo2",
                 95.0, "%", i, NOW)
                for i in range(30)
            ]  # fmt: skip
            await BatchWriter(owner, WriteMethod.UNNEST).write(rows)
            await owner.execute(
                """INSERT INTO alerts (alert_id, tenant, care_unit, patient_pseudonym, rule,
                       metric, priority, state, opened_at, opening_value, message)
                   VALUES (%s, %s, %s, %s, 'spo2_low', 'spo2', 'high', 'open', %s, 85, 'low')""",
                (self.alerts[patient], tenant, unit, patient, NOW - timedelta(minutes=60)),
            )
            await owner.execute(
                "INSERT INTO alert_events (alert_id, kind, at, message) "
                "VALUES (%s, 'opened', %s, 'low')",
                (self.alerts[patient], NOW - timedelta(minutes=60)),
            )
        await owner.execute("SELECT veille_refresh_rollups()")


# Every protected relation, and how to count one patient's rows in it.
PATIENT_ROWS = {
    "readings_visible": "SELECT count(*) FROM readings_visible WHERE patient_pseudonym = %(p)s",
    "readings_1m_visible": "SELECT count(*) FROM readings_1m_visible WHERE patient_pseudonym = %(p)s",
    "readings_1h_visible": "SELECT count(*) FROM readings_1h_visible WHERE patient_pseudonym = %(p)s",
    "alerts": "SELECT count(*) FROM alerts WHERE patient_pseudonym = %(p)s",
    "alert_events": "SELECT count(*) FROM alert_events WHERE alert_id = %(alert)s::uuid",
    "devices": "SELECT count(*) FROM devices WHERE patient_pseudonym = %(p)s",
    "device_bindings": "SELECT count(*) FROM device_bindings WHERE patient_pseudonym = %(p)s",
    "patient_identities": "SELECT count(*) FROM patient_identities WHERE patient_pseudonym = %(p)s",
}  # fmt: skip


async def count_rows(conn: Connection, relation: str, ward: Ward, patient: str) -> int:
    cur = await conn.execute(
        PATIENT_ROWS[relation].encode(), {"p": patient, "alert": ward.alerts[patient]}
    )
    return int((await cur.fetchone() or (0,))[0])
