"""Device -> patient bindings for the validate agent, cached from the registry table.

Refreshed on a timer, and on demand when a message comes from a device the cache does not
know: if the last refresh started before that message reached the gateway, the cache may
predate the device's provisioning, so it is reloaded (waiting out the minimum interval if
needed) before the device is declared unknown. A flood from unknown devices thus costs at
most one reload per interval, and a freshly provisioned device is never dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg

from devices import DeviceBinding, now_us
from store import load_active_bindings

__all__ = ["DeviceDirectory"]

log = logging.getLogger(__name__)


class DeviceDirectory:
    def __init__(self, conninfo: str, *, min_refresh_s: float = 1.0) -> None:
        self._conninfo = conninfo
        self._bindings: dict[str, DeviceBinding] = {}
        self._loaded = asyncio.Event()
        self._last_refresh = 0.0  # monotonic
        self._last_refresh_started_us = 0  # wall clock, comparable with gateway arrival times
        self._min_refresh_s = min_refresh_s
        self._lock = asyncio.Lock()

    def binding_for(self, device_id: str) -> DeviceBinding | None:
        return self._bindings.get(device_id)

    def __len__(self) -> int:
        return len(self._bindings)

    async def refresh(self) -> None:
        async with self._lock:
            started_us = now_us()
            async with await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True
            ) as conn:
                self._bindings = await load_active_bindings(conn)
            self._last_refresh = time.monotonic()
            self._last_refresh_started_us = started_us
            self._loaded.set()

    async def wait_loaded(self) -> None:
        await self._loaded.wait()

    async def refresh_if_unknown(self, device_ids: set[str], received_at_us: int) -> None:
        """Make sure unknown ``device_ids`` are checked against a registry read that started
        after ``received_at_us`` (when the gateway received their latest message)."""
        if all(d in self._bindings for d in device_ids):
            return
        if self._last_refresh_started_us > received_at_us:
            return
        wait = self._min_refresh_s - (time.monotonic() - self._last_refresh)
        if wait > 0:
            await asyncio.sleep(wait)
            if self._last_refresh_started_us > received_at_us:
                return
        try:
            await self.refresh()
        except psycopg.Error as exc:
            log.warning("device registry refresh failed (%s); using the cached bindings", exc)
