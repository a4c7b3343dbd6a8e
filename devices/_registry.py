"""Who a device belongs to: the binding the validator uses to attach readings to a patient."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeviceBinding"]


@dataclass(frozen=True, slots=True)
class DeviceBinding:
    """A device bound to one patient in one care unit of one establishment (tenant)."""

    device_id: str
    tenant: str
    care_unit: str
    patient: str
    bound_since_us: int
