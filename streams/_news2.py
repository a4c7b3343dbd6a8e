"""National Early Warning Score 2 (Royal College of Physicians, 2017), scored exactly.

Pure logic, no I/O: the chart is data (one table of inclusive upper bounds per parameter),
so a reviewer can hold it against the RCP chart line by line. Devices send decimals, so each
band is defined by its upper bound, inclusive: a value belongs to the first band whose upper
bound it does not exceed (respiration rate 8.5 scores 1, like 9). For integer inputs (and
temperatures to 0.1 Cel) this reproduces the chart exactly. See docs/NEWS2.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Final

from devices import ACVPU_CODES, Priority

__all__ = [
    "NEWS2_PARAMETERS",
    "NEWS2_SOURCE_METRICS",
    "News2Observations",
    "News2Score",
    "RiskBand",
    "SpO2Scale",
    "observations_from_latest",
    "score_news2",
]

RED_SCORE: Final = 3  # a single parameter at 3 is a "red score": low-medium risk at least


class SpO2Scale(IntEnum):
    """Which SpO2 chart applies: a clinical decision per patient, never inferred from data.

    Scale 2 is for patients with a prescribed 88-92 % target (hypercapnic respiratory
    failure): on it, high saturations on oxygen score, because they mean over-oxygenation.
    """

    SCALE_1 = 1
    SCALE_2 = 2


class RiskBand(StrEnum):
    """RCP clinical risk: what response the score calls for (docs/NEWS2.md)."""

    LOW = "low"
    LOW_MEDIUM = "low-medium"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def priority(self) -> Priority:
        """The alert priority (IEC 60601-1-8) a NEWS2 alert in this band carries.

        Low-medium maps to MEDIUM, not LOW: the RCP asks for an *urgent* ward-based response
        (the nurse informs the medical team, who review), and one red parameter alone can be
        SpO2 <= 91 % or systolic <= 90 mmHg; IEC "low" means awareness only.
        """
        return _BAND_PRIORITY[self]


_BAND_PRIORITY: Final = MappingProxyType(
    {
        RiskBand.LOW: Priority.LOW,
        RiskBand.LOW_MEDIUM: Priority.MEDIUM,
        RiskBand.MEDIUM: Priority.MEDIUM,
        RiskBand.HIGH: Priority.HIGH,
    }
)

NEWS2_PARAMETERS: Final = (
    "respiration_rate",
    "spo2",
    "air_or_oxygen",
    "systolic_bp",
    "pulse",
    "consciousness",
    "temperature",
)
"""The seven parameters in chart order: the order of subscores and of red parameters."""

NEWS2_SOURCE_METRICS: Final[MappingProxyType[str, tuple[str, ...]]] = MappingProxyType(
    {
        "respiration_rate": ("respiration_rate",),
        "spo2": ("spo2",),
        "air_or_oxygen": ("inhaled_oxygen_flow",),
        "systolic_bp": ("systolic_bp",),
        # ECG heart rate first: the oximeter's pulse rate comes from the plethysmogram and
        # suffers more from motion artefact; it is the fallback when no ECG is worn.
        "pulse": ("heart_rate", "pulse_rate"),
        "consciousness": ("consciousness",),
        "temperature": ("body_temperature",),
    }
)
"""Parameter -> catalogue metrics that supply it, in order of preference."""

_Chart = tuple[tuple[float, int], ...]  # (inclusive upper bound, score), ascending

_RESPIRATION_RATE: Final[_Chart] = ((8, 3), (11, 1), (20, 0), (24, 2), (math.inf, 3))
_SPO2_SCALE_1: Final[_Chart] = ((91, 3), (93, 2), (95, 1), (math.inf, 0))
_SPO2_SCALE_2_AIR: Final[_Chart] = ((83, 3), (85, 2), (87, 1), (math.inf, 0))
_SPO2_SCALE_2_OXYGEN: Final[_Chart] = (
    *_SPO2_SCALE_2_AIR[:3],
    (92, 0),
    (94, 1),
    (96, 2),
    (math.inf, 3),
)
_SYSTOLIC_BP: Final[_Chart] = ((90, 3), (100, 2), (110, 1), (219, 0), (math.inf, 3))
_PULSE: Final[_Chart] = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (math.inf, 3))
_TEMPERATURE: Final[_Chart] = ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (math.inf, 2))
_OXYGEN_SCORE: Final = 2  # any supplemental oxygen, on either SpO2 scale


@dataclass(frozen=True, slots=True, kw_only=True)
class News2Observations:
    """One set of the seven NEWS2 observations, in chart units (/min, %, mmHg, Cel)."""

    respiration_rate: float
    spo2: float
    on_oxygen: bool
    systolic_bp: float
    pulse: float
    consciousness: str  # ACVPU letter: A, C (new confusion), V, P or U
    temperature: float
    spo2_scale: SpO2Scale = SpO2Scale.SCALE_1

    def __post_init__(self) -> None:
        # NaN compares false with every bound and would silently score as the top band.
        for name in ("respiration_rate", "spo2", "systolic_bp", "pulse", "temperature"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"NEWS2 {name} must be a finite number, got {value!r}")
        if self.consciousness not in ACVPU_CODES:
            raise ValueError(
                f"NEWS2 consciousness must be one of {', '.join(ACVPU_CODES)}, "
                f"got {self.consciousness!r}"
            )
        SpO2Scale(self.spo2_scale)  # raises ValueError for anything but 1 or 2


@dataclass(frozen=True, slots=True, kw_only=True)
class News2Score:
    """Subscores in chart order, so a clinician can re-add them by hand."""

    subscores: Mapping[str, int]
    total: int
    band: RiskBand
    red_parameters: tuple[str, ...]  # parameters scoring 3, in chart order
    spo2_scale: SpO2Scale


def _chart_score(value: float, chart: _Chart) -> int:
    for upper, score in chart:
        if value <= upper:
            return score
    raise ValueError(f"{value!r} is in no NEWS2 band")  # unreachable for finite values


def _spo2_score(spo2: float, scale: SpO2Scale, on_oxygen: bool) -> int:
    if scale is SpO2Scale.SCALE_1:
        return _chart_score(spo2, _SPO2_SCALE_1)
    return _chart_score(spo2, _SPO2_SCALE_2_OXYGEN if on_oxygen else _SPO2_SCALE_2_AIR)


def _band(total: int, red_parameters: tuple[str, ...]) -> RiskBand:
    """The highest band that applies: the aggregate outranks a single red parameter."""
    if total >= 7:
        return RiskBand.HIGH
    if total >= 5:
        return RiskBand.MEDIUM
    return RiskBand.LOW_MEDIUM if red_parameters else RiskBand.LOW


def score_news2(obs: News2Observations) -> News2Score:
    """Score one observation set against the RCP 2017 chart."""
    scale = SpO2Scale(obs.spo2_scale)
    subscores = {
        "respiration_rate": _chart_score(obs.respiration_rate, _RESPIRATION_RATE),
        "spo2": _spo2_score(obs.spo2, scale, obs.on_oxygen),
        "air_or_oxygen": _OXYGEN_SCORE if obs.on_oxygen else 0,
        "systolic_bp": _chart_score(obs.systolic_bp, _SYSTOLIC_BP),
        "pulse": _chart_score(obs.pulse, _PULSE),
        "consciousness": 0 if obs.consciousness == "A" else RED_SCORE,
        "temperature": _chart_score(obs.temperature, _TEMPERATURE),
    }
    red = tuple(name for name, score in subscores.items() if score >= RED_SCORE)
    total = sum(subscores.values())
    return News2Score(
        subscores=MappingProxyType(subscores),
        total=total,
        band=_band(total, red),
        red_parameters=red,
        spo2_scale=scale,
    )


def _acvpu_letter(code: float) -> str:
    if not (float(code).is_integer() and 0 <= code < len(ACVPU_CODES)):
        raise ValueError(f"consciousness code {code!r} is not an ACVPU code 0..4 (A, C, V, P, U)")
    return ACVPU_CODES[int(code)]


def observations_from_latest(
    latest: Mapping[str, float | None], *, spo2_scale: SpO2Scale = SpO2Scale.SCALE_1
) -> News2Observations | tuple[str, ...]:
    """Build observations from the latest value per catalogue metric (canonical units).

    Returns the NEWS2 parameters that have no value instead, in chart order, so the caller
    can hold off until all seven are fresh: a partial NEWS2 would under-score. A ``None``
    value (no signal) counts as missing. ``pulse`` takes ``heart_rate`` when present, else
    ``pulse_rate``; any ``inhaled_oxygen_flow`` above 0 means on oxygen.
    """
    found: dict[str, float] = {}
    for parameter, metrics in NEWS2_SOURCE_METRICS.items():
        for metric in metrics:  # plain loops: the stream asks at every measurement time
            value = latest.get(metric)
            if value is not None:
                found[parameter] = value
                break
    if len(found) < len(NEWS2_PARAMETERS):
        return tuple(p for p in NEWS2_PARAMETERS if p not in found)
    return News2Observations(
        respiration_rate=found["respiration_rate"],
        spo2=found["spo2"],
        on_oxygen=found["air_or_oxygen"] > 0,
        systolic_bp=found["systolic_bp"],
        pulse=found["pulse"],
        consciousness=_acvpu_letter(found["consciousness"]),
        temperature=found["temperature"],
        spo2_scale=spo2_scale,
    )
