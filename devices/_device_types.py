"""Device types: which metrics each kind of device may send.

A reading of a metric its device type may not send is dead-lettered (``metric_not_allowed``):
a thermometer reporting SpO2 is misconfigured or spoofed, and its data cannot be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ._metrics import CATALOGUE

__all__ = ["DEVICE_TYPES", "DeviceType", "device_type_named"]


@dataclass(frozen=True, slots=True)
class DeviceType:
    name: str
    display: str
    metrics: frozenset[str]

    def may_send(self, metric: str) -> bool:
        return metric in self.metrics


def _type(name: str, display: str, *metrics: str) -> DeviceType:
    unknown = [m for m in metrics if m not in CATALOGUE]
    if unknown:
        raise ValueError(f"device type {name!r} names metrics not in the catalogue: {unknown}")
    return DeviceType(name, display, frozenset(metrics))


DEVICE_TYPES: Final[MappingProxyType[str, DeviceType]] = MappingProxyType(
    {
        t.name: t
        for t in (
            _type("smartwatch", "Smartwatch", "heart_rate", "spo2", "step_count",
                  "skin_temperature"),
            _type("pulse_oximeter", "Pulse oximeter", "spo2", "pulse_rate"),
            _type("bp_cuff", "Blood-pressure cuff", "systolic_bp", "diastolic_bp", "mean_bp",
                  "pulse_rate"),
            _type("glucometer", "Glucometer", "blood_glucose"),
            _type("cgm", "Continuous glucose monitor", "interstitial_glucose"),
            _type("thermometer", "Thermometer", "body_temperature"),
            _type("weight_scale", "Weight scale", "body_weight"),
            # Heart rate and respiration rate derived from the ECG and thoracic impedance.
            _type("ecg_patch", "ECG patch", "heart_rate", "respiration_rate"),
            # A ward or ICU monitor, e.g. the MIMIC numerics replayed by `veille replay`.
            _type("bedside_monitor", "Bedside monitor", "heart_rate", "pulse_rate", "spo2",
                  "respiration_rate", "systolic_bp", "diastolic_bp", "mean_bp",
                  "arterial_systolic_bp", "arterial_diastolic_bp", "arterial_mean_bp",
                  "body_temperature"),
            # Observations a nurse records on a ward tablet: what no sensor measures for NEWS2.
            _type("observation_app", "Nurse observation app", "consciousness",
                  "inhaled_oxygen_flow", "respiration_rate", "spo2", "systolic_bp",
                  "heart_rate", "body_temperature"),
        )
    }
)  # fmt: skip


def device_type_named(name: str) -> DeviceType | None:
    return DEVICE_TYPES.get(name)
