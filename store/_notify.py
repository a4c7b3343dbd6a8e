"""Reload a cache whenever PostgreSQL says its table changed (``LISTEN``/``NOTIFY``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg

__all__ = ["follow_notifications"]

log = logging.getLogger(__name__)

RETRY_MAX_S = 10.0


async def follow_notifications(
    conninfo: str, channel: str, refresh: Callable[[], Awaitable[None]]
) -> None:
    """Call ``refresh`` on every notification on ``channel``, and once after each (re)connect
    for changes made while not listening. Reconnects with backoff; runs until cancelled."""
    delay = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {channel}")
                await refresh()
                delay = 0.5
                async for _ in conn.notifies():
                    await refresh()
        except psycopg.Error as exc:
            log.warning("%s listener lost (%s); reconnecting in %.1f s", channel, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
