"""The device registry as the validate agent sees it, cached in memory.

The devices a change names are reloaded when the registry changes (``LISTEN
veille_registry``, fired by a trigger on the devices table, payload the device id: provisioning
a thousand devices costs a thousand rows read, not a thousand whole registries); the whole
registry after the listener (re)connects, on a timer as a safety net, and on demand when a
message comes from a device the cache does not know or has not bound: if the last reload
started before that message reached the gateway, the cache may predate the device's
provisioning, so it is reloaded (waiting out the minimum interval if needed) before the
device is refused. A flood from unknown devices thus costs at most one reload per interval.
What it reads the registry from is a :class:`RegistrySource` (``store.StoredRegistry``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Protocol

import psycopg

from devices import RegistryEntry, now_us

__all__ = ["DeviceDirectory", "RegistrySource"]

log = logging.getLogger(__name__)


class RegistrySource(Protocol):
    async def load(self, device_ids: Collection[str] | None = None) -> Mapping[str, RegistryEntry]:
        """Every device, active or revoked, by id; or those of ``device_ids`` that exist."""
        ...

    async def follow(self, on_change: Callable[[frozenset[str] | None], Awaitable[None]]) -> None:
        """Call ``on_change`` with the ids of the devices that changed, or ``None`` when
        anything may have (every reconnect); runs until cancelled."""
        ...


class DeviceDirectory:
    def __init__(self, source: RegistrySource, *, min_refresh_s: float = 1.0) -> None:
        self._source = source
        self._entries: dict[str, RegistryEntry] = {}
        self._loaded = asyncio.Event()
        self._last_refresh = 0.0  # monotonic
        self._last_refresh_started_us = 0  # wall clock, comparable with gateway arrival times
        self._min_refresh_s = min_refresh_s
        self._lock = asyncio.Lock()

    def entry_for(self, device_id: str) -> RegistryEntry | None:
        return self._entries.get(device_id)

    def __len__(self) -> int:
        return len(self._entries)

    async def refresh(self) -> None:
        async with self._lock:
            started_us = now_us()
            self._entries = dict(await self._source.load())
            self._last_refresh = time.monotonic()
            self._last_refresh_started_us = started_us
            self._loaded.set()

    async def refresh_devices(self, device_ids: Collection[str]) -> None:
        """Reload only ``device_ids``: those the registry no longer has leave the cache."""
        async with self._lock:
            found = await self._source.load(device_ids)
            for device_id in device_ids:
                entry = found.get(device_id)
                if entry is None:
                    self._entries.pop(device_id, None)
                else:
                    self._entries[device_id] = entry

    async def on_change(self, device_ids: frozenset[str] | None) -> None:
        if device_ids is None or not self._loaded.is_set():
            await self.refresh()
        else:
            await self.refresh_devices(device_ids)

    @property
    def loaded(self) -> bool:
        """Loaded at least once (the readiness check)."""
        return self._loaded.is_set()

    async def wait_loaded(self) -> None:
        await self._loaded.wait()

    def _usable(self, device_id: str) -> bool:
        entry = self._entries.get(device_id)
        return entry is not None and entry.binding is not None

    async def refresh_if_unknown(self, device_ids: set[str], received_at_us: int) -> None:
        """Make sure unknown or unbound ``device_ids`` are checked against a registry read
        that started after ``received_at_us`` (when the gateway received their message)."""
        if all(self._usable(d) for d in device_ids):
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
            log.warning("device registry refresh failed (%s); using the cached registry", exc)

    async def listen(self) -> None:
        """Reload what every registry change names; reconnects with backoff, runs until
        cancelled."""
        await self._source.follow(self.on_change)
