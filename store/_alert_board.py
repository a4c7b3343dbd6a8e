"""The alert burden per care unit, as the metrics report it (``veille_alerts_open``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import psycopg

__all__ = ["OpenAlertCount", "open_alert_counts"]


class OpenAlertCount(NamedTuple):
    tenant: str
    care_unit: str
    priority: str
    open: int  # open or acknowledged: not resolved
    oldest_unacknowledged_s: float  # 0 when every one of them is acknowledged


# The alerts_board index (care_unit, state, priority, opened_at) serves it: unresolved
# alerts are few beside the resolved history.
_QUERY = """
    SELECT tenant, care_unit, priority, count(*),
           coalesce(extract(epoch FROM now() - min(opened_at) FILTER (WHERE state = 'open')), 0)
    FROM alerts
    WHERE state IN ('open', 'acknowledged')
    GROUP BY tenant, care_unit, priority
    ORDER BY tenant, care_unit, priority
"""


async def open_alert_counts(conn: psycopg.AsyncConnection[Any]) -> list[OpenAlertCount]:
    """Unresolved alerts per (tenant, care unit, priority), and how long the oldest one
    nobody acknowledged has waited."""
    async with conn.cursor() as cur:
        await cur.execute(_QUERY)
        return [
            OpenAlertCount(t, u, p, int(n), float(age)) for t, u, p, n, age in await cur.fetchall()
        ]
