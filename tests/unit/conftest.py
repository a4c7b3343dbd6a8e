"""Shared fixtures for the unit tests: no network, no database, no Kafka."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from devices import DeviceBinding, DeviceStatus, RegistryEntry

DEFAULT_TYPE = "bedside_monitor"  # measures every vital sign the tests use

LookupItem = DeviceBinding | RegistryEntry | tuple[DeviceBinding, str]


def as_entry(item: LookupItem) -> RegistryEntry:
    if isinstance(item, RegistryEntry):
        return item
    binding, device_type = item if isinstance(item, tuple) else (item, DEFAULT_TYPE)
    return RegistryEntry(
        binding.device_id, device_type, binding.tenant, DeviceStatus.ACTIVE, binding
    )


class DictLookup:
    """The smallest RegistryLookup: device id -> registry entry, from memory.

    Takes registry entries, bindings (an active bedside monitor each), or
    ``(binding, device_type)`` pairs as ``Simulation.bindings()`` returns them.
    """

    def __init__(self, items: Iterable[LookupItem] = ()) -> None:
        self._entries = {e.device_id: e for e in map(as_entry, items)}

    def entry_for(self, device_id: str) -> RegistryEntry | None:
        return self._entries.get(device_id)


@pytest.fixture
def make_lookup() -> type[DictLookup]:
    """Build an in-memory RegistryLookup: ``make_lookup([binding, ...])``."""
    return DictLookup
