"""GHT sharing: one patient of an establishment shown to a care unit of another, by grant.

A grant names who granted it, to which (establishment, care unit), why and until when; it is
never deleted nor changed but to be revoked, so the table is its own record. The row-level
security policies (:mod:`store._access`) let the grantee unit read the patient's readings,
rollups, alerts, alert events and identity while ``now() < expires_at`` and the grant is not
revoked: expiry needs no job, and a revocation holds from its commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import TupleRow

from veille.errors import StoreError

__all__ = ["CareGrant", "add_grant", "list_grants", "revoke_grant"]

Connection = psycopg.AsyncConnection[TupleRow]


@dataclass(frozen=True, slots=True)
class CareGrant:
    grant_id: str
    patient: str
    from_tenant: str
    to_tenant: str
    to_care_unit: str
    granted_by: str
    reason: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


_COLUMNS = """grant_id::text, patient_pseudonym, from_tenant, to_tenant, to_care_unit,
    granted_by, reason, granted_at, expires_at, revoked_at, revoked_by"""


async def _patient_tenant(conn: Connection, patient: str) -> str:
    """The establishment the patient belongs to: their admission, else their bindings."""
    cur = await conn.execute(
        """SELECT tenant FROM patient_identities WHERE patient_pseudonym = %(p)s
           UNION SELECT tenant FROM device_bindings WHERE patient_pseudonym = %(p)s""",
        {"p": patient},
    )
    tenants = sorted({str(row[0]) for row in await cur.fetchall()})
    if not tenants:
        raise StoreError(
            f"no patient {patient} is known: admit them (`veille patients admit`) or bind a "
            "device to them first"
        )
    if len(tenants) > 1:
        raise StoreError(f"patient {patient} is known in {', '.join(tenants)}: which one?")
    return tenants[0]


async def add_grant(
    conn: Connection,
    *,
    patient: str,
    to_tenant: str,
    to_care_unit: str,
    granted_by: str,
    reason: str,
    expires_at: datetime,
    now: datetime,
    max_duration: timedelta,
) -> CareGrant:
    """Share ``patient`` with ``to_care_unit`` of ``to_tenant`` until ``expires_at``."""
    if not reason.strip():
        raise StoreError("a grant needs a reason (--reason), e.g. 'transfer for cardiac surgery'")
    if not granted_by.strip():
        raise StoreError("a grant needs who grants it (--by)")
    if not to_tenant.strip() or not to_care_unit.strip():
        raise StoreError("a grant needs the receiving establishment and care unit")
    if expires_at <= now:
        raise StoreError(f"the grant would end at {expires_at.isoformat()}, already past")
    if expires_at - now > max_duration:
        raise StoreError(
            f"a grant lasts at most {max_duration} (VEILLE_GRANT_MAX_DAYS); until "
            f"{expires_at.isoformat()} is longer: grant again when it ends"
        )
    from_tenant = await _patient_tenant(conn, patient)
    cur = await conn.execute(
        f"""INSERT INTO care_grants (grant_id, patient_pseudonym, from_tenant, to_tenant,
                to_care_unit, granted_by, reason, granted_at, expires_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",  # noqa: S608
        (str(uuid.uuid4()), patient, from_tenant, to_tenant, to_care_unit, granted_by.strip(),
         reason.strip(), now, expires_at),
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None  # INSERT ... RETURNING one row
    return CareGrant(*row)


async def list_grants(
    conn: Connection, *, active_only: bool = False, patient: str | None = None
) -> list[CareGrant]:
    """Newest first; ``active_only``: not revoked and not expired."""
    cur = await conn.execute(
        f"""SELECT {_COLUMNS} FROM care_grants
            WHERE (NOT %(active)s OR (revoked_at IS NULL AND now() < expires_at))
              AND (%(patient)s::text IS NULL OR patient_pseudonym = %(patient)s)
            ORDER BY granted_at DESC, grant_id""",  # noqa: S608
        {"active": active_only, "patient": patient},
    )
    return [CareGrant(*row) for row in await cur.fetchall()]


async def revoke_grant(conn: Connection, grant_id: str, *, revoked_by: str) -> CareGrant:
    """End a grant now; refused if unknown or already revoked (an expired one may be revoked:
    the record then says it was)."""
    if not revoked_by.strip():
        raise StoreError("a revocation needs who revokes it (--by)")
    try:
        parsed = uuid.UUID(grant_id)
    except ValueError as exc:
        raise StoreError(f"{grant_id!r} is not a grant id; see `veille grants list`") from exc
    cur = await conn.execute(
        f"""UPDATE care_grants SET revoked_at = now(), revoked_by = %s
            WHERE grant_id = %s AND revoked_at IS NULL RETURNING {_COLUMNS}""",  # noqa: S608
        (revoked_by.strip(), parsed),
    )
    row = await cur.fetchone()
    if row is None:
        raise StoreError(f"no grant {grant_id} that is not revoked yet; see `veille grants list`")
    return CareGrant(*row)
