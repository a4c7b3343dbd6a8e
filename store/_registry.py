"""Device registry queries: provisioning for the demo and tests, bindings for the validator."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg.rows import TupleRow

from devices import DeviceBinding, datetime_to_us, us_to_datetime

__all__ = ["load_active_bindings", "upsert_bindings"]


async def upsert_bindings(
    conn: psycopg.AsyncConnection[TupleRow], bindings: Iterable[tuple[DeviceBinding, str]]
) -> int:
    """Provision or re-bind devices: ``(binding, device_type)`` pairs; returns rows written."""
    count = 0
    async with conn.transaction(), conn.cursor() as cur:
        for binding, device_type in bindings:
            await cur.execute(
                """INSERT INTO devices (device_id, tenant, care_unit, patient_pseudonym,
                       device_type, bound_since, status)
                   VALUES (%s, %s, %s, %s, %s, %s, 'active')
                   ON CONFLICT (device_id) DO UPDATE SET tenant = EXCLUDED.tenant,
                       care_unit = EXCLUDED.care_unit,
                       patient_pseudonym = EXCLUDED.patient_pseudonym,
                       device_type = EXCLUDED.device_type, bound_since = EXCLUDED.bound_since,
                       status = 'active', updated_at = now()""",
                (
                    binding.device_id,
                    binding.tenant,
                    binding.care_unit,
                    binding.patient,
                    device_type,
                    us_to_datetime(binding.bound_since_us),
                ),
            )
            count += cur.rowcount
    return count


async def load_active_bindings(conn: psycopg.AsyncConnection[TupleRow]) -> dict[str, DeviceBinding]:
    cur = await conn.execute(
        """SELECT device_id, tenant, care_unit, patient_pseudonym, bound_since
           FROM devices WHERE status = 'active'"""
    )
    return {
        row[0]: DeviceBinding(row[0], row[1], row[2], row[3], datetime_to_us(row[4]))
        for row in await cur.fetchall()
    }
