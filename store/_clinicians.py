"""Clinician accounts and the care units each one may see (``veille users``, the clinic).

Passwords arrive here already hashed (argon2id, :mod:`clinic._auth`); this module never sees
one in clear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import psycopg
from psycopg.rows import TupleRow

from veille.errors import StoreError

__all__ = [
    "ClinicianRole",
    "ClinicianRow",
    "add_clinician",
    "disable_clinician",
    "find_clinician",
    "list_clinicians",
]

Connection = psycopg.AsyncConnection[TupleRow]


class ClinicianRole(StrEnum):
    """Nurses read and acknowledge; physicians also change thresholds; admins as physicians."""

    NURSE = "nurse"
    PHYSICIAN = "physician"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ClinicianRow:
    id: int
    tenant: str
    username: str
    display_name: str
    role: ClinicianRole
    care_units: tuple[str, ...]
    disabled_at: datetime | None
    created_at: datetime
    password_hash: str | None = None


_SELECT = """SELECT c.id, c.tenant, c.username, c.display_name, c.role,
        coalesce(array_agg(m.care_unit ORDER BY m.care_unit)
                 FILTER (WHERE m.care_unit IS NOT NULL), '{}'),
        c.disabled_at, c.created_at, c.password_hash
    FROM clinicians c LEFT JOIN care_unit_members m ON m.clinician = c.id"""


def _row(row: TupleRow) -> ClinicianRow:
    ident, tenant, username, name, role, units, disabled, created, password_hash = row
    return ClinicianRow(
        int(ident), str(tenant), str(username), str(name), ClinicianRole(role),
        tuple(units), disabled, created, password_hash,
    )  # fmt: skip


async def add_clinician(
    conn: Connection,
    *,
    tenant: str,
    username: str,
    display_name: str,
    role: ClinicianRole,
    password_hash: str | None,
    care_units: Sequence[str],
) -> int:
    """Create an account with its care units; returns its id."""
    try:
        async with conn.transaction():
            cur = await conn.execute(
                """INSERT INTO clinicians (tenant, username, display_name, role, password_hash)
                   VALUES (%s, %s, %s, %s, %s) RETURNING id""",
                (tenant, username, display_name, role.value, password_hash),
            )
            ident = int((await cur.fetchone() or (0,))[0])
            for unit in dict.fromkeys(care_units):
                await conn.execute(
                    """INSERT INTO care_unit_members (clinician, tenant, care_unit)
                       VALUES (%s, %s, %s)""",
                    (ident, tenant, unit),
                )
    except psycopg.errors.UniqueViolation as exc:
        raise StoreError(
            f"user {username!r} already exists in {tenant!r}; `veille users list` shows them"
        ) from exc
    return ident


async def find_clinician(conn: Connection, *, tenant: str, username: str) -> ClinicianRow | None:
    """The account with its password hash (for login), disabled or not."""
    cur = await conn.execute(
        f"""{_SELECT} WHERE c.tenant = %s AND c.username = %s
            GROUP BY c.id""",  # noqa: S608
        (tenant, username),
    )
    row = await cur.fetchone()
    return _row(row) if row else None


async def list_clinicians(conn: Connection, *, tenant: str | None = None) -> list[ClinicianRow]:
    """Every account (of one tenant if given), without password hashes."""
    cur = await conn.execute(
        f"""{_SELECT} WHERE %(tenant)s::text IS NULL OR c.tenant = %(tenant)s
            GROUP BY c.id ORDER BY c.tenant, c.username""",  # noqa: S608
        {"tenant": tenant},
    )
    return [_row(row[:-1] + (None,)) for row in await cur.fetchall()]


async def disable_clinician(conn: Connection, *, tenant: str, username: str) -> datetime:
    """Disable an account and revoke its open sessions at once; returns when."""
    async with conn.transaction():
        cur = await conn.execute(
            """UPDATE clinicians SET disabled_at = coalesce(disabled_at, now())
               WHERE tenant = %s AND username = %s RETURNING id, disabled_at""",
            (tenant, username),
        )
        row = await cur.fetchone()
        if row is None:
            raise StoreError(
                f"no user {username!r} in {tenant!r}; `veille users list` shows the accounts"
            )
        await conn.execute(
            """UPDATE clinician_sessions SET revoked_at = now()
               WHERE clinician = %s AND revoked_at IS NULL""",
            (row[0],),
        )
    disabled_at: datetime = row[1]
    return disabled_at
