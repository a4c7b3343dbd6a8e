"""The registry's change feed on a real PostgreSQL: NOTIFY carries each device's id, a bulk
change reaches the validator's cache as one call naming every device, and a load reads only
the devices asked for."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TypeVar

import psycopg
import pytest

from devices import DeviceBinding, now_us
from store import StoredRegistry, upsert_bindings
from tests.integration.conftest import RunningStack
from tests.support.devices import TENANT
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

DEVICES = 300
T = TypeVar("T")


async def test_a_bulk_provisioning_arrives_as_few_calls_naming_every_device(
    running_stack: RunningStack,
) -> None:
    registry = StoredRegistry(running_stack.component_dsn("worker"))
    calls: list[frozenset[str] | None] = []

    async def on_change(device_ids: frozenset[str] | None) -> None:
        calls.append(device_ids)

    follower = asyncio.ensure_future(registry.follow(on_change))
    try:
        await eventually(lambda: _now(len(calls)), lambda n: n >= 1, timeout_s=30,
                         what="the listener's first call")  # fmt: skip
        assert calls == [None]  # connected: anything may have changed, so everything
        prefix = f"bulk-{uuid.uuid4().hex[:8]}"
        ids = {f"{prefix}-{i:03d}" for i in range(DEVICES)}
        since = now_us() - 60_000_000
        bindings = [(DeviceBinding(d, TENANT, "icu", f"p-{d}", since), "pulse_oximeter")
                    for d in sorted(ids)]  # fmt: skip
        async with await psycopg.AsyncConnection.connect(running_stack.dsn) as conn:
            async with conn.transaction():  # every NOTIFY is delivered at the commit
                await upsert_bindings(conn, bindings)

        def named() -> set[str]:
            return set().union(*(c for c in calls[1:] if c is not None))

        await eventually(lambda: _now(named()), lambda seen: ids <= seen, timeout_s=30,
                         what="every provisioned device named")  # fmt: skip
        assert None not in calls[1:]
        assert len(calls) - 1 < 10, f"{len(calls) - 1} calls for one commit of {DEVICES}"
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower

    some = sorted(ids)[:3] + ["never-provisioned"]
    loaded = await registry.load(some)
    assert sorted(loaded) == sorted(ids)[:3]
    assert all(e.binding is not None and e.binding.patient == f"p-{d}" for d, e in loaded.items())


async def _now(value: T) -> T:
    return value
