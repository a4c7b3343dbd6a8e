"""What TimescaleDB's background jobs do, done by Veille on plain PostgreSQL.

On TimescaleDB the policies created by the schema run inside the database; here we only
refresh nothing and return. On plain PostgreSQL: create tomorrow's partitions, drop the ones
past retention, refresh the one-minute and one-hour rollups, each through a function that
runs as the schema's owner (the sink's role owns nothing; see :mod:`store._access`).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from ._schema import Flavour, SchemaOptions

__all__ = ["MaintenanceReport", "run_maintenance"]


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    partitions_created: int
    partitions_dropped: int
    rollup_refreshed: bool


async def run_maintenance(
    conn: psycopg.AsyncConnection[TupleRow], flavour: Flavour, options: SchemaOptions
) -> MaintenanceReport:
    if flavour is Flavour.TIMESCALE:
        return MaintenanceReport(0, 0, rollup_refreshed=False)
    created_cur = await conn.execute(
        "SELECT veille_ensure_partitions(%s, %s)",
        (options.partitions_back_days, options.partitions_ahead_days),
    )
    created = (await created_cur.fetchone() or (0,))[0]
    dropped_cur = await conn.execute(
        "SELECT veille_drop_partitions_before(current_date - %s)", (options.retention_days,)
    )
    dropped = (await dropped_cur.fetchone() or (0,))[0]
    # Only the owner may refresh a materialized view: this function runs as the owner.
    await conn.execute("SELECT veille_refresh_rollups()")
    return MaintenanceReport(int(created), int(dropped), rollup_refreshed=True)
