"""Before the first message: the ward's devices in the registry, and the demo's clinician."""

from __future__ import annotations

from typing import Final

import psycopg

from clinic import hash_password
from devices import DeviceBinding
from devices.simulator import VirtualFleet
from store import ClinicianRole, add_clinician, find_clinician, upsert_bindings

__all__ = ["DEMO_PASSWORD", "DEMO_USER", "provision_demo_login", "provision_devices"]

# The demo's clinician: a local stack with simulated patients only, so a printed password.
DEMO_USER: Final = "demo.nurse"
DEMO_PASSWORD: Final = "veille-demo-ward"  # noqa: S105 - printed at start; loopback-only stack


async def provision_devices(dsn: str, bindings: list[tuple[DeviceBinding, str]]) -> None:
    """Bind every simulated device to its patient (a day before the run starts)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await upsert_bindings(conn, bindings)


async def provision_demo_login(dsn: str, fleet: VirtualFleet) -> tuple[str, list[str]]:
    """The demo nurse, a member of the ward's care units; kept if a kept stack has it.
    Returns the tenant and the care units."""
    tenant = fleet.config.tenant
    units = sorted({p.care_unit for p in fleet.patients})
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if await find_clinician(conn, tenant=tenant, username=DEMO_USER) is None:
            await add_clinician(
                conn, tenant=tenant, username=DEMO_USER, display_name="Demo nurse",
                role=ClinicianRole.NURSE, password_hash=hash_password(DEMO_PASSWORD),
                care_units=units,
            )  # fmt: skip
    return tenant, units
