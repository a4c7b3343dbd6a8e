"""Canonical values -> the number a device shows in its own unit.

A device rounds to its display precision; the validator converts back and rounds to the
catalogue precision. The display precision is chosen so that round trip lands exactly on
the intended canonical value (checked per value, with more decimals where it would not).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .._metrics import Metric
from ._windows import FloatArray

__all__ = ["DISPLAY_DECIMALS", "to_device_unit"]

# What devices show: 98.6 degF, 126 mg/dL, 172.4 lb, 16.0 kPa. Half a display step stays
# under half a canonical step (0.1 degF = 0.056 Cel vs 0.1 Cel; 1 mg/dL = 0.056 mmol/L vs
# 0.1; 0.1 lb = 0.045 kg vs 0.1; 0.1 kPa = 0.75 mmHg vs 1), so the round trip holds.
DISPLAY_DECIMALS: Final = {"[degF]": 1, "mg/dL": 0, "[lb_av]": 1, "kPa": 1, "g": 0}
_MAX_EXTRA_DECIMALS = 4


def _number(value: float, decimals: int) -> float | int:
    """JSON numbers as a device writes them: ``72``, not ``72.0``."""
    return int(round(value)) if decimals == 0 else round(value, decimals)


def to_device_unit(metric: Metric, canonical: FloatArray, unit: str) -> list[float | int]:
    """``canonical`` (already at the metric's precision) expressed in ``unit``."""
    if unit == metric.unit:
        if metric.decimals == 0:
            ints: list[float | int] = np.round(canonical).astype(np.int64).tolist()
            return ints
        floats: list[float | int] = np.round(canonical, metric.decimals).tolist()
        return floats
    conversion = metric.conversions[unit]
    base = DISPLAY_DECIMALS.get(unit, metric.decimals)
    out: list[float | int] = []
    for value in canonical.tolist():
        raw = (value - conversion.offset) / conversion.scale
        for decimals in range(base, base + _MAX_EXTRA_DECIMALS + 1):
            shown = _number(raw, decimals)
            if metric.to_canonical(shown, unit) == value:
                break
        else:  # pragma: no cover - the affine maps are exact enough for 4 more decimals
            raise ValueError(f"{metric.name} {value} cannot be shown in {unit} exactly")
        out.append(shown)
    return out
