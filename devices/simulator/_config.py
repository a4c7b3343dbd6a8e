"""What to simulate: fleet size and duration, the device mix, and how often things go wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from ._faults import FaultRates
from ._specs import DEVICE_SPECS

__all__ = ["DEFAULT_DEVICE_MIX", "DeliveryRates", "DeviceMix", "SimulationConfig"]

DeviceMix = tuple[tuple[tuple[str, ...], float], ...]
"""``((device types, share of patients), ...)``; alternatives in one group are exclusive."""

DEFAULT_DEVICE_MIX: Final[DeviceMix] = (
    (("smartwatch",), 1.0),
    (("pulse_oximeter",), 1.0),
    (("bp_cuff",), 1.0),
    (("thermometer",), 1.0),
    (("cgm", "glucometer"), 0.4),  # people with diabetes: half on a CGM, half finger-prick
    (("weight_scale",), 0.3),  # heart failure follow-up
    (("ecg_patch",), 0.3),
    (("observation_app",), 0.3),  # a nurse visits: NEWS2 rounds
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRates:
    """Per-message probabilities of what networks and QoS 1 do to messages."""

    duplicate: float = 0.01  # PUBACK lost, the device sends the same bytes again
    out_of_order: float = 0.01  # held back (retry, gateway) behind the device's later messages


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationConfig:
    patients: int
    minutes: float
    seed: int
    tenant: str = "chu-sim"
    care_units: tuple[str, ...] = ("cardiology", "pneumology", "geriatrics")
    pseudonym_key: bytes = b"veille-simulator"
    device_mix: DeviceMix = DEFAULT_DEVICE_MIX
    event_share: float = 0.35  # patients with at least one clinical event
    events_per_patient_day: float = 2.0  # for those patients, spread over the run
    faults: FaultRates = field(default_factory=FaultRates)
    delivery: DeliveryRates = field(default_factory=DeliveryRates)
    utc_offset_h: float = 1.0  # the circadian rhythm follows local time (Paris in winter)

    def __post_init__(self) -> None:
        if self.patients < 0 or self.minutes < 1:
            raise ValueError(
                f"need patients >= 0 and minutes >= 1, got {self.patients} and {self.minutes}"
            )
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0 (it names the devices), got {self.seed}")
        unknown = {t for group, _ in self.device_mix for t in group} - set(DEVICE_SPECS)
        if unknown:
            raise ValueError(f"unknown device types in the mix: {sorted(unknown)}")
        if not self.care_units:
            raise ValueError("care_units must name at least one care unit")

    @property
    def duration_s(self) -> float:
        return self.minutes * 60.0
