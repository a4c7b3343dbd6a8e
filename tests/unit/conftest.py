"""Shared fixtures for the unit tests: no network, no database, no Kafka."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from devices import DeviceBinding


class DictLookup:
    """The smallest BindingLookup: device id -> binding, from memory."""

    def __init__(self, bindings: Iterable[DeviceBinding] = ()) -> None:
        self._bindings = {b.device_id: b for b in bindings}

    def binding_for(self, device_id: str) -> DeviceBinding | None:
        return self._bindings.get(device_id)


@pytest.fixture
def make_lookup() -> type[DictLookup]:
    """Build an in-memory BindingLookup: ``make_lookup([binding, ...])``."""
    return DictLookup
