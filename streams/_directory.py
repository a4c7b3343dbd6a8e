"""Device -> patient bindings for the validate agent, cached from the registry table.

Refreshed on a timer, and at once (at most every ``min_refresh_s``) when a device is unknown,
so a device provisioned a second ago is not dead-lettered because the cache is stale.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg

from devices import DeviceBinding
from store import load_active_bindings

__all__ = ["DeviceDirectory"]

log = logging.getLogger(__name__)


class DeviceDirectory:
    def __init__(self, conninfo: str, *, min_refresh_s: float = 1.0) -> None:
        self._conninfo = conninfo
        self._bindings: dict[str, DeviceBinding] = {}
        self._loaded = asyncio.Event()
        self._last_refresh = 0.0
        self._min_refresh_s = min_refresh_s
        self._lock = asyncio.Lock()

    def binding_for(self, device_id: str) -> DeviceBinding | None:
        return self._bindings.get(device_id)

    def __len__(self) -> int:
        return len(self._bindings)

    async def refresh(self) -> None:
        async with self._lock:
            async with await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True
            ) as conn:
                self._bindings = await load_active_bindings(conn)
            self._last_refresh = time.monotonic()
            self._loaded.set()

    async def wait_loaded(self) -> None:
        await self._loaded.wait()

    async def refresh_if_unknown(self, device_ids: set[str]) -> None:
        """Reload once if any id is unknown and the last reload is older than the minimum."""
        if all(d in self._bindings for d in device_ids):
            return
        if time.monotonic() - self._last_refresh < self._min_refresh_s:
            return
        try:
            await self.refresh()
        except psycopg.Error as exc:
            log.warning("device registry refresh failed (%s); using the cached bindings", exc)
