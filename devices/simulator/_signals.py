"""Physiological signals behind the catalogue metrics, and which metric reads which signal.

Several metrics read one signal: a watch's heart rate, an ECG patch's and an oximeter's
pulse rate all follow the patient's one heart, so an event shows on every device at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = ["METRIC_SIGNAL", "Signal", "metrics_reading"]


class Signal(StrEnum):
    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    RESPIRATION_RATE = "respiration_rate"
    SYSTOLIC_BP = "systolic_bp"
    DIASTOLIC_BP = "diastolic_bp"
    MEAN_BP = "mean_bp"  # derived: (systolic + 2 diastolic) / 3
    CORE_TEMPERATURE = "core_temperature"
    SKIN_TEMPERATURE = "skin_temperature"
    GLUCOSE = "glucose"
    WEIGHT = "weight"
    STEP_RATE = "step_rate"  # steps per minute
    ACVPU = "acvpu"
    OXYGEN_FLOW = "oxygen_flow"


METRIC_SIGNAL: Final[MappingProxyType[str, Signal]] = MappingProxyType(
    {
        "heart_rate": Signal.HEART_RATE,
        "pulse_rate": Signal.HEART_RATE,
        "spo2": Signal.SPO2,
        "respiration_rate": Signal.RESPIRATION_RATE,
        "systolic_bp": Signal.SYSTOLIC_BP,
        "diastolic_bp": Signal.DIASTOLIC_BP,
        "mean_bp": Signal.MEAN_BP,
        "arterial_systolic_bp": Signal.SYSTOLIC_BP,
        "arterial_diastolic_bp": Signal.DIASTOLIC_BP,
        "arterial_mean_bp": Signal.MEAN_BP,
        "body_temperature": Signal.CORE_TEMPERATURE,
        "skin_temperature": Signal.SKIN_TEMPERATURE,
        "blood_glucose": Signal.GLUCOSE,
        "interstitial_glucose": Signal.GLUCOSE,
        "body_weight": Signal.WEIGHT,
        "step_count": Signal.STEP_RATE,
        "consciousness": Signal.ACVPU,
        "inhaled_oxygen_flow": Signal.OXYGEN_FLOW,
    }
)


def metrics_reading(signals: Iterable[Signal]) -> tuple[str, ...]:
    """Catalogue metrics that show ``signals``; mean BP when both pressures are given."""
    shown = set(signals)
    if {Signal.SYSTOLIC_BP, Signal.DIASTOLIC_BP} <= shown:
        shown.add(Signal.MEAN_BP)
    return tuple(m for m, s in METRIC_SIGNAL.items() if s in shown)
