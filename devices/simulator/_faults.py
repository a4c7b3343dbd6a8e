"""What goes wrong with real devices: silences, lost signal, motion artefacts, clock skew.

Faults are drawn per device before the run (so the ground truth knows them up front) at the
rates of its ``DeviceSpec``; delivery faults (duplicates, reordering) happen per message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from ._specs import DeviceSpec
from ._windows import Window

__all__ = ["DeviceFaults", "FaultRates", "draw_faults", "draw_window", "longest_window_s"]

_NO_SIGNAL_S: Final = (60.0, 600.0)  # a probe off the finger for 1 to 10 min
_SILENCE_S: Final = (600.0, 5400.0)  # a flat battery: 10 min to 1 h 30 before a recharge
_MOTION_S: Final = (20.0, 120.0)  # an optical sensor locked onto arm movement
_MAX_SHARE: Final = 0.25  # no fault window covers more than a quarter of a short run


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRates:
    """Multipliers and shares on top of each device type's own rates."""

    scale: float = 1.0  # multiplies every per-device rate of DEVICE_SPECS
    clock_skew_share: float = 0.2  # devices whose clock is off
    # The validator accepts up to 300 s ahead of its own clock: leave room for latency.
    max_ahead_skew_s: int = 240
    max_behind_skew_s: int = 600


@dataclass(frozen=True, slots=True)
class DeviceFaults:
    silences: tuple[Window, ...] = ()  # battery out: nothing measured, nothing sent
    no_signal: tuple[Window, ...] = ()  # readings with status "no_signal"
    motion_artefacts: tuple[Window, ...] = ()  # heart-rate spikes, labelled in the truth
    clock_skew_s: int = 0  # added to measured_at

    def with_window(self, kind: str, window: Window) -> DeviceFaults:
        """A copy with one more window of ``kind`` ("silences", "no_signal", ...)."""

        def added(current: tuple[Window, ...]) -> tuple[Window, ...]:
            return tuple(sorted((*current, window), key=lambda w: w.start_s))

        if kind == "silences":
            return replace(self, silences=added(self.silences))
        if kind == "no_signal":
            return replace(self, no_signal=added(self.no_signal))
        if kind == "motion_artefacts":
            return replace(self, motion_artefacts=added(self.motion_artefacts))
        raise ValueError(f"unknown fault kind {kind!r}")


def longest_window_s(kind: str, duration_s: float) -> float:
    bounds = {"silences": _SILENCE_S, "no_signal": _NO_SIGNAL_S, "motion_artefacts": _MOTION_S}
    return min(bounds[kind][1], _MAX_SHARE * duration_s)


def _windows(
    rng: np.random.Generator, per_hour: float, bounds: tuple[float, float], duration_s: float
) -> tuple[Window, ...]:
    """A Poisson number of windows, one per equal slot of the run so they never overlap."""
    count = int(rng.poisson(per_hour * duration_s / 3600.0))
    if count == 0:
        return ()
    slot = duration_s / count
    longest = min(bounds[1], _MAX_SHARE * duration_s, 0.8 * slot)
    windows = []
    for i in range(count):
        length = float(np.floor(rng.uniform(min(bounds[0], longest), longest)))
        start = float(np.floor(i * slot + rng.uniform(0.0, slot - length)))
        windows.append(Window(start, start + length))
    return tuple(windows)


def draw_window(
    rng: np.random.Generator, kind: str, duration_s: float, shortest_s: float
) -> Window:
    """One window of ``kind`` placed anywhere in the run, at least ``shortest_s`` long."""
    longest = longest_window_s(kind, duration_s)
    length = float(np.floor(rng.uniform(min(shortest_s, longest), longest)))
    start = float(np.floor(rng.uniform(0.0, duration_s - length)))
    return Window(start, start + length)


def _clock_skew(rng: np.random.Generator, rates: FaultRates) -> int:
    if rng.random() >= rates.clock_skew_share:
        return 0
    if rng.random() < 0.6:  # clocks drift behind more often than ahead
        return -int(rng.integers(5, rates.max_behind_skew_s + 1))
    return int(rng.integers(5, rates.max_ahead_skew_s + 1))


def draw_faults(
    rng: np.random.Generator, spec: DeviceSpec, rates: FaultRates, duration_s: float
) -> DeviceFaults:
    scale = rates.scale
    return DeviceFaults(
        _windows(rng, scale * spec.battery_out_per_day / 24.0, _SILENCE_S, duration_s),
        _windows(rng, scale * spec.no_signal_per_h, _NO_SIGNAL_S, duration_s)
        if spec.no_signal_metrics
        else (),
        _windows(rng, scale * spec.motion_artefacts_per_h, _MOTION_S, duration_s),
        _clock_skew(rng, rates),
    )
