"""Device registry: provision, bind to a patient, revoke, list; bindings for the validator.

Every change fires ``NOTIFY veille_registry`` with the device's id (a trigger in the schema),
so validators reload that device at once instead of accepting a revoked device's data until
the next timer, and without reading the whole registry per change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from devices import (
    DEVICE_TYPES,
    DeviceBinding,
    DeviceStatus,
    RegistryEntry,
    datetime_to_us,
    us_to_datetime,
)
from veille.errors import StoreError

from ._credentials import hash_credential, new_credential
from ._notify import follow_changes

__all__ = [
    "DeviceRow",
    "StoredRegistry",
    "add_device",
    "bind_device",
    "list_devices",
    "load_registry",
    "record_patient_identity",
    "revoke_device",
    "upsert_bindings",
]

Connection = psycopg.AsyncConnection[TupleRow]

CHANNEL = "veille_registry"  # NOTIFY'd by the devices trigger (``_schema``)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device_id: str
    device_type: str
    tenant: str
    status: str
    care_unit: str | None
    patient: str | None
    bound_since: datetime | None
    revoked_at: datetime | None


def _check_type(device_type: str) -> None:
    if device_type not in DEVICE_TYPES:
        known = ", ".join(DEVICE_TYPES)
        raise StoreError(f"unknown device type {device_type!r}; known types: {known}")


async def add_device(conn: Connection, device_id: str, device_type: str, tenant: str) -> str:
    """Provision a device (or re-provision a revoked one); returns its new credential.

    The credential is shown once: only its scrypt hash is stored. Re-provisioning an active
    device is refused, so a typo cannot silently replace a working device's credential.
    """
    _check_type(device_type)
    credential = new_credential()
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT status FROM devices WHERE device_id = %s FOR UPDATE", (device_id,)
        )
        existing = await cur.fetchone()
        if existing is not None and existing[0] == DeviceStatus.ACTIVE:
            raise StoreError(
                f"device {device_id!r} is already provisioned and active; "
                "revoke it first with `veille devices revoke` to issue a new credential"
            )
        await conn.execute(
            """INSERT INTO devices (device_id, tenant, device_type, status, credential_hash)
               VALUES (%s, %s, %s, 'active', %s)
               ON CONFLICT (device_id) DO UPDATE SET tenant = EXCLUDED.tenant,
                   device_type = EXCLUDED.device_type, status = 'active',
                   credential_hash = EXCLUDED.credential_hash, revoked_at = NULL,
                   care_unit = NULL, patient_pseudonym = NULL, bound_since = NULL,
                   updated_at = now()""",
            (device_id, tenant, device_type, hash_credential(credential)),
        )
    return credential


async def bind_device(
    conn: Connection,
    device_id: str,
    *,
    patient: str,
    care_unit: str,
    since: datetime,
    national_id: str | None = None,
) -> None:
    """Bind a device to a patient from ``since``; closes its previous binding at that time.

    ``national_id``, when given, is kept in the restricted ``patient_identities`` table only.
    """
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT tenant, status, bound_since FROM devices WHERE device_id = %s FOR UPDATE",
            (device_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise StoreError(f"device {device_id!r} is not provisioned; run `veille devices add`")
        tenant, status, bound_since = row
        if status == DeviceStatus.REVOKED:
            raise StoreError(
                f"device {device_id!r} is revoked; re-provision it with `veille devices add`"
            )
        if bound_since is not None and since <= bound_since:
            raise StoreError(
                f"device {device_id!r} is bound since {bound_since.isoformat()}; a new binding "
                "must start after it"
            )
        await conn.execute(
            """UPDATE device_bindings SET bound_until = %s
               WHERE device_id = %s AND bound_until IS NULL""",
            (since, device_id),
        )
        await conn.execute(
            """INSERT INTO device_bindings (device_id, tenant, care_unit, patient_pseudonym,
                   bound_from) VALUES (%s, %s, %s, %s, %s)""",
            (device_id, tenant, care_unit, patient, since),
        )
        await conn.execute(
            """UPDATE devices SET care_unit = %s, patient_pseudonym = %s, bound_since = %s,
                   updated_at = now() WHERE device_id = %s""",
            (care_unit, patient, since, device_id),
        )
        if national_id is not None:
            await record_patient_identity(
                conn, pseudonym=patient, tenant=tenant, national_id=national_id
            )


async def rotate_device_credential(
    conn: Connection, device_id: str, hand_over: Callable[[str], Awaitable[None]]
) -> str:
    """A new credential for an active device; returns it (shown once).

    ``hand_over`` (the broker) takes it first, with the device's row locked: if it fails,
    the registry keeps the old hash and nothing changed anywhere.
    """
    credential = new_credential()
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT 1 FROM devices WHERE device_id = %s AND status = 'active' FOR UPDATE",
            (device_id,),
        )
        if await cur.fetchone() is None:
            raise StoreError(f"device {device_id!r} is not an active provisioned device")
        await hand_over(credential)
        await conn.execute(
            "UPDATE devices SET credential_hash = %s, updated_at = now() WHERE device_id = %s",
            (hash_credential(credential), device_id),
        )
    return credential


async def revoke_device(conn: Connection, device_id: str, *, at: datetime) -> None:
    async with conn.transaction():
        cur = await conn.execute(
            """UPDATE devices SET status = 'revoked', revoked_at = %s, updated_at = now()
               WHERE device_id = %s AND status = 'active'""",
            (at, device_id),
        )
        if cur.rowcount == 0:
            raise StoreError(f"device {device_id!r} is not an active provisioned device")
        await conn.execute(
            """UPDATE device_bindings SET bound_until = %s
               WHERE device_id = %s AND bound_until IS NULL""",
            (at, device_id),
        )


async def record_patient_identity(
    conn: Connection, *, pseudonym: str, tenant: str, national_id: str
) -> None:
    await conn.execute(
        """INSERT INTO patient_identities (patient_pseudonym, tenant, national_id)
           VALUES (%s, %s, %s) ON CONFLICT (patient_pseudonym) DO NOTHING""",
        (pseudonym, tenant, national_id),
    )


async def list_devices(
    conn: Connection, *, tenant: str | None = None, device_ids: Collection[str] | None = None
) -> list[DeviceRow]:
    cur = await conn.execute(
        """SELECT device_id, device_type, tenant, status, care_unit, patient_pseudonym,
                  bound_since, revoked_at
           FROM devices
           WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s)
             AND (%(ids)s::text[] IS NULL OR device_id = ANY(%(ids)s::text[]))
           ORDER BY tenant, device_id""",
        {"tenant": tenant, "ids": None if device_ids is None else list(device_ids)},
    )
    return [DeviceRow(*row) for row in await cur.fetchall()]


async def load_registry(
    conn: Connection, device_ids: Collection[str] | None = None
) -> dict[str, RegistryEntry]:
    """Every device, active or revoked (the validator must tell "revoked" from "unknown"), or
    those of ``device_ids`` that exist."""
    entries = {}
    for d in await list_devices(conn, device_ids=device_ids):
        binding = None
        if d.patient is not None and d.care_unit is not None and d.bound_since is not None:
            binding = DeviceBinding(
                d.device_id, d.tenant, d.care_unit, d.patient, datetime_to_us(d.bound_since)
            )
        revoked = datetime_to_us(d.revoked_at) if d.revoked_at else None
        entries[d.device_id] = RegistryEntry(
            d.device_id, d.device_type, d.tenant, DeviceStatus(d.status), binding, revoked
        )
    return entries


class StoredRegistry:
    """The registry in the database, and word when it changes: what a validator's cache reads
    (``streams``' ``RegistrySource``)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    async def load(self, device_ids: Collection[str] | None = None) -> dict[str, RegistryEntry]:
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            return await load_registry(conn, device_ids)

    async def follow(self, on_change: Callable[[frozenset[str] | None], Awaitable[None]]) -> None:
        """Call ``on_change`` with the ids of the devices that changed, or ``None`` after a
        (re)connect (anything may have changed); runs until cancelled."""
        await follow_changes(self._conninfo, CHANNEL, on_change)


async def upsert_bindings(conn: Connection, bindings: Iterable[tuple[DeviceBinding, str]]) -> int:
    """Provision and bind many devices at once (demo, tests, bulk import), no credentials.

    Idempotent: a device already bound the same way is left as it is.
    """
    count = 0
    for binding, device_type in bindings:
        _check_type(device_type)
        since = us_to_datetime(binding.bound_since_us)
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO devices (device_id, tenant, device_type, status)
                   VALUES (%s, %s, %s, 'active') ON CONFLICT (device_id) DO NOTHING""",
                (binding.device_id, binding.tenant, device_type),
            )
            cur = await conn.execute(
                """SELECT patient_pseudonym, care_unit, bound_since, status FROM devices
                   WHERE device_id = %s""",
                (binding.device_id,),
            )
            current = await cur.fetchone()
        if current == (binding.patient, binding.care_unit, since, DeviceStatus.ACTIVE.value):
            continue
        await bind_device(
            conn, binding.device_id, patient=binding.patient, care_unit=binding.care_unit,
            since=since,
        )  # fmt: skip
        count += 1
    return count
