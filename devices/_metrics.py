"""Metric catalogue: what each vital sign is, its canonical UCUM unit and plausible range.

The catalogue is data, not code paths: adding a metric means adding one ``Metric`` entry.
Conversions are exact affine maps ``canonical = value * scale + offset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = ["CATALOGUE", "Metric", "UnitConversion", "metric_named"]


@dataclass(frozen=True, slots=True)
class UnitConversion:
    """``canonical = value * scale + offset``: exact for every unit pair we accept."""

    scale: float
    offset: float = 0.0

    def to_canonical(self, value: float) -> float:
        return value * self.scale + self.offset


@dataclass(frozen=True, slots=True)
class Metric:
    """One vital sign: identity (LOINC), canonical unit, accepted units and plausible range."""

    name: str
    loinc: str
    unit: str
    plausible_min: float
    plausible_max: float
    decimals: int
    conversions: MappingProxyType[str, UnitConversion] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def accepts(self, unit: str) -> bool:
        return unit == self.unit or unit in self.conversions

    def to_canonical(self, value: float, unit: str) -> float:
        """Convert to the canonical unit and round to the metric's precision."""
        if unit != self.unit:
            value = self.conversions[unit].to_canonical(value)
        return round(value, self.decimals)

    def is_plausible(self, canonical_value: float) -> bool:
        return self.plausible_min <= canonical_value <= self.plausible_max


_MMHG_PER_KPA: Final = 7.500615758  # 1 kPa = 1000 / 133.322387415 mm[Hg]
_BP = MappingProxyType({"kPa": UnitConversion(_MMHG_PER_KPA)})

CATALOGUE: Final[MappingProxyType[str, Metric]] = MappingProxyType(
    {
        m.name: m
        for m in (
            # Plausible ranges bound what a living patient can show, not what is normal:
            # outside them the value is a device or transmission error, never a clinical sign.
            Metric("heart_rate", "8867-4", "/min", 20, 300, 0),
            Metric("spo2", "59408-5", "%", 50, 100, 0),
            Metric("respiration_rate", "9279-1", "/min", 2, 80, 0),
            Metric("systolic_bp", "8480-6", "mm[Hg]", 40, 300, 0, _BP),
            Metric("diastolic_bp", "8462-4", "mm[Hg]", 15, 200, 0, _BP),
            Metric(
                "body_temperature",
                "8310-5",
                "Cel",
                25,
                45,
                1,
                MappingProxyType({"[degF]": UnitConversion(5 / 9, -32 * 5 / 9)}),
            ),
        )
    }
)


def metric_named(name: str) -> Metric | None:
    """The catalogue entry for ``name``, or None when the metric is unknown."""
    return CATALOGUE.get(name)
