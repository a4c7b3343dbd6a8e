"""Metric catalogue: what each vital sign is, its canonical UCUM unit and plausible range.

The catalogue is data, not code paths: adding a metric means adding one ``Metric`` entry.
Conversions are exact affine maps ``canonical = value * scale + offset`` built from the
defining constants (UCUM), not from rounded factors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = ["ACVPU_CODES", "CATALOGUE", "Metric", "UnitConversion", "metric_named"]


@dataclass(frozen=True, slots=True)
class UnitConversion:
    """``canonical = value * scale + offset``: exact for every unit pair we accept."""

    scale: float
    offset: float = 0.0

    def to_canonical(self, value: float) -> float:
        return value * self.scale + self.offset


@dataclass(frozen=True, slots=True)
class Metric:
    """One measured quantity: identity (LOINC), canonical UCUM unit, accepted units, range."""

    name: str
    display: str
    loinc: str
    unit: str
    plausible_min: float
    plausible_max: float
    decimals: int
    conversions: MappingProxyType[str, UnitConversion] = field(
        default_factory=lambda: MappingProxyType({})
    )
    no_signal_zero: bool = True  # a 0 is "sensor off" (MIMIC, most monitors), never a value

    def accepts(self, unit: str) -> bool:
        return unit == self.unit or unit in self.conversions

    def to_canonical(self, value: float, unit: str) -> float:
        """Convert to the canonical unit and round to the metric's precision."""
        if unit != self.unit:
            value = self.conversions[unit].to_canonical(value)
        if type(value) is float and value.is_integer():
            return value  # its own rounding; round() to digits goes through decimal text
        return round(value, self.decimals)

    def is_plausible(self, canonical_value: float) -> bool:
        return self.plausible_min <= canonical_value <= self.plausible_max

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "display": self.display,
            "loinc": self.loinc,
            "unit": self.unit,
            "accepted_units": {u: [c.scale, c.offset] for u, c in self.conversions.items()},
            "plausible_range": [self.plausible_min, self.plausible_max],
            "decimals": self.decimals,
            "zero_means_no_signal": self.no_signal_zero,
        }


# Exact definitions: 1 mm[Hg] = 133.322387415 Pa; 1 [lb_av] = 0.45359237 kg;
# glucose molar mass 180.156 g/mol, so 1 mmol/L = 18.0156 mg/dL.
_MMHG_PER_KPA: Final = 1000 / 133.322387415
_KG_PER_LB: Final = 0.45359237
_MG_DL_PER_MMOL_L: Final = 18.0156
_PRESSURE = MappingProxyType({"kPa": UnitConversion(_MMHG_PER_KPA)})
_TEMPERATURE = MappingProxyType({"[degF]": UnitConversion(5 / 9, -32 * 5 / 9)})
_GLUCOSE = MappingProxyType({"mg/dL": UnitConversion(1 / _MG_DL_PER_MMOL_L)})
_WEIGHT = MappingProxyType({"[lb_av]": UnitConversion(_KG_PER_LB), "g": UnitConversion(0.001)})

CATALOGUE: Final[MappingProxyType[str, Metric]] = MappingProxyType(
    {
        m.name: m
        for m in (
            # Plausible ranges bound what a living patient can show, not what is normal:
            # outside them the value is a device or transmission error, never a clinical sign.
            Metric("heart_rate", "Heart rate", "8867-4", "/min", 20, 300, 0),
            Metric("pulse_rate", "Pulse rate by pulse oximetry", "8889-8", "/min", 20, 300, 0),
            Metric("spo2", "Oxygen saturation by pulse oximetry", "59408-5", "%", 50, 100, 0),
            Metric("respiration_rate", "Respiratory rate", "9279-1", "/min", 2, 80, 0),
            Metric("systolic_bp", "Systolic blood pressure", "8480-6", "mm[Hg]", 40, 300, 0,
                   _PRESSURE),
            Metric("diastolic_bp", "Diastolic blood pressure", "8462-4", "mm[Hg]", 15, 200, 0,
                   _PRESSURE),
            Metric("mean_bp", "Mean blood pressure", "8478-0", "mm[Hg]", 20, 250, 0, _PRESSURE),
            # Invasive (arterial line) pressures: a different measurement from the cuff's.
            Metric("arterial_systolic_bp", "Invasive systolic arterial pressure", "76215-3",
                   "mm[Hg]", 40, 300, 0, _PRESSURE),
            Metric("arterial_diastolic_bp", "Invasive diastolic arterial pressure", "76213-8",
                   "mm[Hg]", 15, 200, 0, _PRESSURE),
            Metric("arterial_mean_bp", "Invasive mean arterial pressure", "76214-6", "mm[Hg]",
                   20, 250, 0, _PRESSURE),
            Metric("body_temperature", "Body temperature", "8310-5", "Cel", 25, 45, 1,
                   _TEMPERATURE),
            Metric("skin_temperature", "Temperature of skin", "39106-0", "Cel", 15, 45, 1,
                   _TEMPERATURE),
            Metric("blood_glucose", "Glucose in capillary blood by glucometer", "14743-9",
                   "mmol/L", 0.5, 40, 1, _GLUCOSE),
            Metric("interstitial_glucose", "Glucose in interstitial fluid (CGM)", "105272-9",
                   "mmol/L", 0.5, 40, 1, _GLUCOSE),
            Metric("body_weight", "Body weight", "29463-7", "kg", 0.3, 500, 1, _WEIGHT),
            # Zero is a real value for the metrics below.
            Metric("step_count", "Number of steps (pedometer)", "55423-8", "{steps}", 0, 100_000,
                   0, no_signal_zero=False),
            # ACVPU coded 0..4: Alert, new Confusion, Voice, Pain, Unresponsive (NEWS2 order).
            Metric("consciousness", "Level of responsiveness (ACVPU)", "67775-7", "{ACVPU}", 0,
                   4, 0, no_signal_zero=False),
            # The supplemental-oxygen flag NEWS2 needs: 0 = breathing air, > 0 = on oxygen.
            Metric("inhaled_oxygen_flow", "Inhaled oxygen flow rate", "3151-8", "L/min", 0, 70,
                   1, no_signal_zero=False),
        )
    }
)  # fmt: skip

ACVPU_CODES: Final = ("A", "C", "V", "P", "U")


def metric_named(name: str) -> Metric | None:
    """The catalogue entry for ``name``, or None when the metric is unknown."""
    return CATALOGUE.get(name)
