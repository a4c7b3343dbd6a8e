"""Threshold overrides per care unit or per patient: versioned, never edited in place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from ._notify import follow_notifications

__all__ = [
    "StoredOverrides",
    "ThresholdOverride",
    "load_effective_overrides",
    "record_override",
    "threshold_history",
]

Connection = psycopg.AsyncConnection[TupleRow]

CHANNEL = "veille_thresholds"  # NOTIFY'd by the threshold_overrides trigger (``_schema``)


@dataclass(frozen=True, slots=True)
class ThresholdOverride:
    """One version of an override; ``active`` False means "back to the default" from then on."""

    tenant: str
    care_unit: str | None
    patient: str | None
    rule: str
    limit: float | None
    clear_at: float | None
    persistence: int | None
    version: int
    active: bool
    changed_by: str
    changed_at: datetime
    reason: str | None


_COLUMNS = """tenant, care_unit, patient_pseudonym, rule, limit_value, clear_at, persistence,
    version, active, changed_by, changed_at, reason"""


async def record_override(
    conn: Connection,
    *,
    tenant: str,
    rule: str,
    care_unit: str | None = None,
    patient: str | None = None,
    limit: float | None = None,
    clear_at: float | None = None,
    persistence: int | None = None,
    changed_by: str,
    reason: str | None = None,
) -> int:
    """Store a new version (``limit`` None: remove the override); returns its version."""
    active = limit is not None
    async with conn.transaction():
        # Serialise writers of the same scope: versions must not collide.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"{tenant}|{care_unit}|{patient}|{rule}",),
        )
        cur = await conn.execute(
            """SELECT coalesce(max(version), 0) + 1 FROM threshold_overrides
               WHERE tenant = %s AND care_unit IS NOT DISTINCT FROM %s
                 AND patient_pseudonym IS NOT DISTINCT FROM %s AND rule = %s""",
            (tenant, care_unit, patient, rule),
        )
        version = int((await cur.fetchone() or (1,))[0])
        await conn.execute(
            f"""INSERT INTO threshold_overrides ({_COLUMNS})
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), %s)""",  # noqa: S608
            (tenant, care_unit, patient, rule, limit, clear_at, persistence, version, active,
             changed_by, reason),
        )  # fmt: skip
    return version


async def load_effective_overrides(conn: Connection) -> list[ThresholdOverride]:
    """The latest version of every scope, where that version is an active override."""
    cur = await conn.execute(
        f"""SELECT {_COLUMNS} FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY tenant, care_unit, patient_pseudonym, rule
                    ORDER BY version DESC) AS newest
                FROM threshold_overrides) latest
            WHERE newest = 1 AND active"""  # noqa: S608
    )
    return [ThresholdOverride(*row) for row in await cur.fetchall()]


async def threshold_history(conn: Connection, *, tenant: str) -> list[ThresholdOverride]:
    cur = await conn.execute(
        f"""SELECT {_COLUMNS} FROM threshold_overrides WHERE tenant = %s
            ORDER BY rule, care_unit NULLS LAST, patient_pseudonym NULLS LAST, version""",  # noqa: S608
        (tenant,),
    )
    return [ThresholdOverride(*row) for row in await cur.fetchall()]


class StoredOverrides:
    """The effective overrides in the database, and word when they change: what a worker's
    threshold cache reads (``streams``' ``OverrideSource``)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    async def load(self) -> list[ThresholdOverride]:
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            return await load_effective_overrides(conn)

    async def follow(self, on_change: Callable[[], Awaitable[None]]) -> None:
        """Call ``on_change`` after every change (and every reconnect); runs until cancelled."""
        await follow_notifications(self._conninfo, CHANNEL, on_change)
