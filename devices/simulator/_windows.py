"""Time windows and ramps on the simulation clock (seconds since the start).

Events, activity bursts and device faults are all windows; keeping one vectorised shape
for them means every signal is a pure function of time, cheap to evaluate chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FloatArray", "Ramp", "Window", "any_window", "smoothstep"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Window:
    """``[start_s, end_s)``: a device fault, a silence, a lost-signal run."""

    start_s: float
    end_s: float

    def contains(self, t: FloatArray) -> BoolArray:
        return (t >= self.start_s) & (t < self.end_s)

    def overlaps(self, start_s: float, end_s: float) -> bool:
        return self.start_s < end_s and start_s < self.end_s


def smoothstep(x: FloatArray) -> FloatArray:
    """0 -> 1 with zero slope at both ends: physiology drifts, it does not jump."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True, slots=True)
class Ramp:
    """A trapezoid in time: rises from ``onset_s``, holds on the plateau, falls to ``end_s``."""

    onset_s: float
    plateau_start_s: float
    plateau_end_s: float
    end_s: float

    def weight(self, t: FloatArray) -> FloatArray:
        """0 outside, 1 on the plateau, smooth in between."""
        rise = smoothstep((t - self.onset_s) / max(self.plateau_start_s - self.onset_s, 1e-9))
        fall = smoothstep((self.end_s - t) / max(self.end_s - self.plateau_end_s, 1e-9))
        w: FloatArray = np.minimum(rise, fall)
        return w

    def overlaps(self, start_s: float, end_s: float) -> bool:
        return self.onset_s < end_s and start_s < self.end_s

    @property
    def plateau(self) -> Window:
        return Window(self.plateau_start_s, self.plateau_end_s)


def any_window(windows: Iterable[Window], t: FloatArray) -> BoolArray:
    """True where ``t`` falls inside any of ``windows``."""
    mask = np.zeros(t.shape, dtype=np.bool_)
    if t.size == 0:
        return mask
    lo, hi = float(t.min()), float(t.max()) + 1.0
    for window in windows:
        if window.overlaps(lo, hi):
            mask |= window.contains(t)
    return mask
