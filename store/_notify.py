"""Reload a cache whenever PostgreSQL says its table changed (``LISTEN``/``NOTIFY``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg

__all__ = ["follow_changes", "follow_notifications"]

log = logging.getLogger(__name__)

RETRY_MAX_S = 10.0
GATHER_S = 0.05  # notifications arriving this close together are handled as one change

OnChange = Callable[[frozenset[str] | None], Awaitable[None]]


async def follow_changes(
    conninfo: str, channel: str, on_change: OnChange, *, gather_s: float = GATHER_S
) -> None:
    """Call ``on_change`` with the payloads of the notifications on ``channel`` (those that
    arrive within ``gather_s`` of the first together, so a bulk change is one call), and with
    ``None`` after each (re)connect: anything may have changed while nobody listened.
    Reconnects with backoff; runs until cancelled."""
    delay = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {channel}")
                await on_change(None)
                delay = 0.5
                while True:
                    first = [n.payload async for n in conn.notifies(stop_after=1)]
                    more = [n.payload async for n in conn.notifies(timeout=gather_s)]
                    await on_change(frozenset(first + more))
        except psycopg.Error as exc:
            log.warning("%s listener lost (%s); reconnecting in %.1f s", channel, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)


async def follow_notifications(
    conninfo: str, channel: str, refresh: Callable[[], Awaitable[None]]
) -> None:
    """Call ``refresh`` after every change on ``channel`` and once after each (re)connect,
    for changes made while not listening. Reconnects with backoff; runs until cancelled."""

    async def on_change(_payloads: frozenset[str] | None) -> None:
        await refresh()

    await follow_changes(conninfo, channel, on_change)
