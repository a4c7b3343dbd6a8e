"""What TimescaleDB's background jobs do, done by Veille on plain PostgreSQL.

On TimescaleDB the policies created by the schema run inside the database; here we only
refresh nothing and return. On plain PostgreSQL: create tomorrow's partitions, drop the ones
past retention, refresh the one-minute and one-hour rollups.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from ._schema import Flavour, SchemaOptions

__all__ = ["MaintenanceReport", "run_maintenance"]

ROLLUPS = ("readings_1m", "readings_1h")


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
    for rollup in ROLLUPS:
        populated_cur = await conn.execute(
            "SELECT ispopulated FROM pg_matviews WHERE matviewname = %s", (rollup,)
        )
        populated = bool((await populated_cur.fetchone() or (False,))[0])
        # CONCURRENTLY keeps the rollup readable, but needs a first plain refresh.
        concurrently = "CONCURRENTLY " if populated else ""
        await conn.execute(f"REFRESH MATERIALIZED VIEW {concurrently}{rollup}".encode())
    return MaintenanceReport(int(created), int(dropped), rollup_refreshed=True)
