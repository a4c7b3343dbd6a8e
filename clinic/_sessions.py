"""Login sessions in the database: created at login, looked up by token hash, revoked at
logout or when the account is disabled (``veille users disable``)."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from store import ClinicianRole

from ._auth import new_session_token, token_digest
from ._scope import Caller, CareScope

__all__ = ["caller_by_username", "caller_for_token", "open_session", "revoke_session"]

Connection = psycopg.AsyncConnection[TupleRow]

_CALLER = """SELECT c.id, c.username, c.display_name, c.role, c.tenant,
        coalesce(array_agg(m.care_unit ORDER BY m.care_unit)
                 FILTER (WHERE m.care_unit IS NOT NULL), '{}')
    FROM clinicians c LEFT JOIN care_unit_members m ON m.clinician = c.id"""


def _caller(row: TupleRow, digest: bytes | None) -> Caller:
    ident, username, name, role, tenant, units = row
    return Caller(
        int(ident), str(username), str(name), ClinicianRole(role),
        CareScope(str(tenant), tuple(units)), digest,
    )  # fmt: skip


async def open_session(
    conn: Connection, clinician_id: int, lifetime_s: int
) -> tuple[str, datetime]:
    """A new token (returned once, never stored) and when it expires."""
    token = new_session_token()
    cur = await conn.execute(
        """INSERT INTO clinician_sessions (token_hash, clinician, expires_at)
           VALUES (%s, %s, now() + make_interval(secs => %s)) RETURNING expires_at""",
        (token_digest(token), clinician_id, lifetime_s),
    )
    expires_at: datetime = (await cur.fetchone() or (None,))[0]
    return token, expires_at


async def caller_for_token(conn: Connection, token: str) -> Caller | None:
    """The session's clinician, unless the session expired, was revoked, or the account was
    disabled since."""
    digest = token_digest(token)
    cur = await conn.execute(
        f"""{_CALLER} JOIN clinician_sessions s ON s.clinician = c.id
            WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now()
              AND c.disabled_at IS NULL
            GROUP BY c.id""",  # noqa: S608
        (digest,),
    )
    row = await cur.fetchone()
    return _caller(row, digest) if row else None


async def caller_by_username(conn: Connection, tenant: str, username: str) -> Caller | None:
    """An enabled account by name: the identity an OIDC token asserts."""
    cur = await conn.execute(
        f"""{_CALLER} WHERE c.tenant = %s AND c.username = %s AND c.disabled_at IS NULL
            GROUP BY c.id""",  # noqa: S608
        (tenant, username),
    )
    row = await cur.fetchone()
    return _caller(row, None) if row else None


async def revoke_session(conn: Connection, digest: bytes) -> None:
    await conn.execute(
        "UPDATE clinician_sessions SET revoked_at = now() WHERE token_hash = %s "
        "AND revoked_at IS NULL",
        (digest,),
    )
