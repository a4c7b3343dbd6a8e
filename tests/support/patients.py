"""A patient with readings and an open alert, and a nurse of their care unit, written as the
database owner: for the tests of what the clinic reads and records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from clinic import hash_password
from store import ClinicianRole, add_clinician

PASSWORD = "correct horse battery staple"


async def seed_patient(dsn: str, tenant: str, unit: str, patient: str) -> str:
    """A bound device with half an hour of SpO2 and an open alert; returns the alert id."""
    device, alert = f"dev-{patient}", str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as owner:
        await owner.execute(
            """INSERT INTO devices (device_id, tenant, device_type, care_unit, patient_pseudonym,
                   bound_since) VALUES (%s, %s, 'pulse_oximeter', %s, %s, %s)""",
            (device, tenant, unit, patient, now - timedelta(hours=2)),
        )
        await owner.execute(
            """INSERT INTO device_bindings (device_id, tenant, care_unit, patient_pseudonym,
                   bound_from) VALUES (%s, %s, %s, %s, %s)""",
            (device, tenant, unit, patient, now - timedelta(hours=2)),
        )
        for i in range(30):
            await owner.execute(
                """INSERT INTO readings (measured_at, tenant, care_unit, patient_pseudonym,
                       device_id, metric, value, unit, seq, received_at)
                   VALUES (%s, %s, %s, %s, %s, 'spo2', 95, '%%', %s, %s)""",
                (now - timedelta(minutes=30 - i), tenant, unit, patient, device, i, now),
            )
        await owner.execute(
            """INSERT INTO alerts (alert_id, tenant, care_unit, patient_pseudonym, rule, metric,
                   priority, state, opened_at, opening_value, message)
               VALUES (%s, %s, %s, %s, 'spo2_low', 'spo2', 'high', 'open', %s, 85, 'low')""",
            (alert, tenant, unit, patient, now - timedelta(minutes=10)),
        )
        await owner.execute("SELECT veille_refresh_rollups()")
    return alert


async def add_nurse(dsn: str, tenant: str, unit: str) -> str:
    username = f"nurse-{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await add_clinician(conn, tenant=tenant, username=username, display_name="Nurse",
                            role=ClinicianRole.NURSE, password_hash=hash_password(PASSWORD),
                            care_units=[unit])  # fmt: skip
    return username
