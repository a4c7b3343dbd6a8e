"""The device registry as the validator sees it: which device, of what type, bound to whom."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DeviceBinding", "DeviceStatus", "RegistryEntry"]


class DeviceStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"  # credential withdrawn (lost, stolen, decommissioned): data refused


@dataclass(frozen=True, slots=True)
class DeviceBinding:
    """A device bound to one patient in one care unit of one establishment (tenant)."""

    device_id: str
    tenant: str
    care_unit: str
    patient: str
    bound_since_us: int


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """A provisioned device; ``binding`` is None until it is bound to a patient."""

    device_id: str
    device_type: str
    tenant: str
    status: DeviceStatus
    binding: DeviceBinding | None
    revoked_at_us: int | None = None
