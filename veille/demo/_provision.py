"""Before the first message: the ward's devices in the registry, its patients admitted (made-up
names and beds, through ``veille patients admit``'s path), and the demo's clinician."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final

import psycopg

from clinic import hash_password
from devices import DeviceBinding
from devices.simulator import VirtualFleet, VirtualPatient
from store import (
    ClinicianRole,
    PatientAdmission,
    add_clinician,
    admit_patient,
    find_clinician,
    upsert_bindings,
)

__all__ = [
    "DEMO_PASSWORD",
    "DEMO_USER",
    "demo_admission",
    "provision_demo_login",
    "provision_devices",
    "provision_identities",
]

# The demo's clinician: a local stack with simulated patients only, so a printed password.
DEMO_USER: Final = "demo.nurse"
DEMO_PASSWORD: Final = "veille-demo-ward"  # noqa: S105 - printed at start; loopback-only stack


async def provision_devices(dsn: str, bindings: list[tuple[DeviceBinding, str]]) -> None:
    """Bind every simulated device to its patient (a day before the run starts)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await upsert_bindings(conn, bindings)


# Made up: simulated patients have no identity; these only show where a real name would be.
_FAMILY: Final = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
)
_GIVEN: Final = (
    "Jeanne",
    "Louis",
    "Marie",
    "Pierre",
    "Camille",
    "Jules",
    "Alice",
    "Paul",
    "Louise",
    "Henri",
    "Rose",
    "Marcel",
    "Lucie",
    "André",
    "Odette",
)


def demo_admission(patient: VirtualPatient, tenant: str) -> PatientAdmission:
    """A stable made-up identity and bed per simulated patient (by its index)."""
    i = patient.index
    return PatientAdmission(
        pseudonym=patient.pseudonym, tenant=tenant, care_unit=patient.care_unit,
        family_name=_FAMILY[i % len(_FAMILY)], given_names=_GIVEN[(i * 7) % len(_GIVEN)],
        birth_date=date(1930 + (i * 13) % 60, 1 + i % 12, 1 + (i * 5) % 28),
        bed=f"{patient.care_unit[:4].upper()}-{101 + i}",
    )  # fmt: skip


async def provision_identities(dsn: str, fleet: VirtualFleet) -> None:
    """Admit every simulated patient, as `veille patients admit` does (the registry's role)."""
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for patient in fleet.patients:
            await admit_patient(conn, demo_admission(patient, fleet.config.tenant), at=now)


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
