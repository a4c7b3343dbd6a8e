"""The alert burden the sink reports beside its writes: unresolved alerts per care unit.

Read from the database every ``ALERTS_EVERY_S`` on a connection of its own (the writes must
never wait for it); a failed read keeps the last figures and tries again next round.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from store import open_alert_counts
from telemetry import SinkMetrics

__all__ = ["ALERTS_EVERY_S", "follow_open_alerts"]

log = logging.getLogger(__name__)

ALERTS_EVERY_S = 15.0  # Prometheus' default scrape interval


async def follow_open_alerts(
    conninfo: str, metrics: SinkMetrics, stop: asyncio.Event, *, every_s: float = ALERTS_EVERY_S
) -> None:
    conn: psycopg.AsyncConnection[object] | None = None
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
                counts = await open_alert_counts(conn)
                # Cleared and set in one step of the loop: no scrape sees it half done, and a
                # care unit with no alert left drops out instead of keeping its last count.
                metrics.alerts_open.clear()
                metrics.oldest_unacknowledged.clear()
                for c in counts:
                    labels = (c.tenant, c.care_unit, c.priority)
                    metrics.alerts_open.labels(*labels).set(c.open)
                    metrics.oldest_unacknowledged.labels(*labels).set(c.oldest_unacknowledged_s)
            except psycopg.Error as exc:
                log.warning("open alerts not read (%s); next try in %.0f s", exc, every_s)
                if conn is not None:
                    await conn.close()
                conn = None
            try:
                await asyncio.wait_for(stop.wait(), every_s)
            except TimeoutError:
                pass
    finally:
        if conn is not None:
            await conn.close()
