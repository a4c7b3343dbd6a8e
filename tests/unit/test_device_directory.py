"""The validator's registry cache: a change reloads the devices it names, not the registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping

from devices import DeviceBinding, DeviceStatus, RegistryEntry
from streams.runtime import DeviceDirectory


def _entry(device_id: str, status: DeviceStatus = DeviceStatus.ACTIVE) -> RegistryEntry:
    binding = DeviceBinding(device_id, "t", "icu", f"p-{device_id}", 0)
    return RegistryEntry(device_id, "pulse_oximeter", "t", status, binding)


class _Registry:
    """A registry table with a log of what each load read."""

    def __init__(self, *ids: str) -> None:
        self.rows = {i: _entry(i) for i in ids}
        self.loads: list[frozenset[str] | None] = []

    async def load(self, device_ids: Collection[str] | None = None) -> Mapping[str, RegistryEntry]:
        self.loads.append(None if device_ids is None else frozenset(device_ids))
        if device_ids is None:
            return dict(self.rows)
        return {i: self.rows[i] for i in device_ids if i in self.rows}

    async def follow(self, on_change: Callable[[frozenset[str] | None], Awaitable[None]]) -> None:
        raise AssertionError("not used here")


async def test_a_change_reloads_only_the_devices_it_names() -> None:
    registry = _Registry("a", "b", "c")
    directory = DeviceDirectory(registry)
    await directory.on_change(None)  # the listener's first connect: everything
    registry.rows["b"] = _entry("b", DeviceStatus.REVOKED)
    registry.rows["d"] = _entry("d")
    del registry.rows["c"]
    await directory.on_change(frozenset({"b", "c", "d"}))
    assert registry.loads == [None, frozenset({"b", "c", "d"})]
    assert [directory.entry_for(i) for i in "abcd"] == [
        _entry("a"), _entry("b", DeviceStatus.REVOKED), None, _entry("d")
    ]  # fmt: skip
    assert len(directory) == 3


async def test_a_change_before_the_first_load_loads_everything() -> None:
    registry = _Registry("a", "b")
    directory = DeviceDirectory(registry)
    await directory.on_change(frozenset({"a"}))
    assert registry.loads == [None]
    assert len(directory) == 2


async def test_a_reconnect_reloads_everything_and_forgets_what_left_meanwhile() -> None:
    registry = _Registry("a", "b")
    directory = DeviceDirectory(registry)
    await directory.on_change(None)
    del registry.rows["a"]  # deleted while the listener was away: no notification seen
    await directory.on_change(None)
    assert registry.loads == [None, None]
    assert directory.entry_for("a") is None
    assert directory.entry_for("b") == _entry("b")
