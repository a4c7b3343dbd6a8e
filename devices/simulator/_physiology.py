"""One virtual patient's physiology: the true value of each signal at any instant.

True values are pure functions of time, built from per-patient draws: a baseline, a daily
(circadian) rhythm following local time, a slow wander, activity bursts, meals for glucose,
and the patient's clinical events on top. Devices add their own noise and faults later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

from ._events import ClinicalEvent
from ._signals import Signal
from ._windows import FloatArray, Ramp, smoothstep

__all__ = ["ActivityBurst", "Meal", "Oscillation", "Physiology", "draw_physiology"]

_DAY_S: Final = 86_400.0
_TWO_PI: Final = 2 * np.pi
# Local hour of each rhythm's peak: heart rate and pressure in the afternoon, core
# temperature late afternoon (nadir near 05:00), skin warmest at night (distal vasodilation).
_PEAK_HOUR: Final = MappingProxyType(
    {
        Signal.HEART_RATE: 16.0,
        Signal.SYSTOLIC_BP: 14.0,
        Signal.DIASTOLIC_BP: 14.0,
        Signal.RESPIRATION_RATE: 15.0,
        Signal.CORE_TEMPERATURE: 17.0,
        Signal.SKIN_TEMPERATURE: 3.0,
        Signal.WEIGHT: 19.0,
    }
)
_MEAL_PEAK_S: Final = 50 * 60.0  # capillary glucose peaks about 50 min after a meal
_MEAL_HOURS: Final = (7.5, 12.5, 19.5)
_AWAKE_STEPS_PER_MIN: Final = 4.0  # pottering about the house between bursts
_ACTIVE_STEPS_PER_MIN: Final = 105.0  # a walk at full intensity


@dataclass(frozen=True, slots=True)
class Oscillation:
    amplitude: float
    period_s: float
    phase: float

    def at(self, t: FloatArray) -> FloatArray:
        value: FloatArray = self.amplitude * np.sin(_TWO_PI * t / self.period_s + self.phase)
        return value


@dataclass(frozen=True, slots=True)
class ActivityBurst:
    """A walk, stairs, physiotherapy: heart rate, breathing, pressure and steps rise together."""

    ramp: Ramp
    intensity: float


@dataclass(frozen=True, slots=True)
class Meal:
    at_s: float
    rise: float  # mmol/L at the peak


@dataclass(frozen=True, slots=True)
class Physiology:
    baseline: MappingProxyType[Signal, float]
    circadian: MappingProxyType[Signal, float]  # amplitude of the daily rhythm
    wander: MappingProxyType[Signal, tuple[Oscillation, ...]]
    activity_gain: MappingProxyType[Signal, float]  # change at full activity
    day_origin_s: float  # local seconds since midnight at simulation time 0
    activity: tuple[ActivityBurst, ...]
    meals: tuple[Meal, ...]
    events: tuple[ClinicalEvent, ...]

    def local_hour(self, t: FloatArray) -> FloatArray:
        hours: FloatArray = ((t + self.day_origin_s) / 3600.0) % 24.0
        return hours

    def awake(self, t: FloatArray) -> FloatArray:
        """1 from about 07:00 to 22:30 local time, 0 at night, smooth at both ends."""
        h = self.local_hour(t)
        awake: FloatArray = smoothstep(h - 6.5) * smoothstep(23.0 - h)
        return awake

    def activity_level(self, t: FloatArray) -> FloatArray:
        level = np.zeros_like(t)
        if t.size:
            lo, hi = float(t.min()), float(t.max()) + 1.0
            for burst in self.activity:
                if burst.ramp.overlaps(lo, hi):
                    level += burst.intensity * burst.ramp.weight(t)
        clipped: FloatArray = np.minimum(level, 1.0)
        return clipped

    def signal(self, signal: Signal, t: FloatArray) -> FloatArray:
        """True value of ``signal`` at times ``t`` (seconds since the start), events included."""
        if signal is Signal.MEAN_BP:
            systolic = self.signal(Signal.SYSTOLIC_BP, t)
            diastolic = self.signal(Signal.DIASTOLIC_BP, t)
            mean: FloatArray = (systolic + 2.0 * diastolic) / 3.0
            return mean
        value = np.full(t.shape, self.baseline.get(signal, 0.0))
        if signal in self.circadian:
            phase = _TWO_PI * (self.local_hour(t) - _PEAK_HOUR[signal]) / 24.0
            value += self.circadian[signal] * np.cos(phase)
        for oscillation in self.wander.get(signal, ()):
            value += oscillation.at(t)
        if signal is Signal.STEP_RATE:
            value += _AWAKE_STEPS_PER_MIN * self.awake(t)
        if signal in self.activity_gain:
            value += self.activity_gain[signal] * self.activity_level(t)
        if signal is Signal.GLUCOSE:
            value += self._meals(t)
        return self._with_events(signal, t, value)

    def _meals(self, t: FloatArray) -> FloatArray:
        rise = np.zeros_like(t)
        for meal in self.meals:
            tau = np.maximum(t - meal.at_s, 0.0) / _MEAL_PEAK_S
            rise += meal.rise * tau * np.exp(1.0 - tau)
        return rise

    def _with_events(self, signal: Signal, t: FloatArray, value: FloatArray) -> FloatArray:
        """Blend toward each event's level with its ramp weight: the plateau is the level."""
        if t.size == 0:
            return value
        lo, hi = float(t.min()), float(t.max()) + 1.0
        for event in self.events:
            level = event.level(signal)
            if level is None or not event.ramp.overlaps(lo, hi):
                continue
            w = event.ramp.weight(t)
            value = value * (1.0 - w) + level * w
        return value


def _clipped_normal(
    rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float
) -> float:
    return float(np.clip(rng.normal(mean, sd), lo, hi))


def _baseline(rng: np.random.Generator, *, diabetic: bool) -> dict[Signal, float]:
    systolic = _clipped_normal(rng, 128.0, 14.0, 100.0, 165.0)
    glucose = (7.5, 1.5, 5.0, 11.0) if diabetic else (5.2, 0.4, 4.2, 6.2)
    return {
        Signal.HEART_RATE: _clipped_normal(rng, 75.0, 9.0, 55.0, 100.0),
        Signal.SPO2: _clipped_normal(rng, 96.5, 1.2, 93.0, 99.0),
        Signal.RESPIRATION_RATE: _clipped_normal(rng, 16.0, 2.0, 12.0, 20.0),
        Signal.SYSTOLIC_BP: systolic,
        Signal.DIASTOLIC_BP: float(np.clip(0.6 * systolic + rng.normal(0.0, 5.0), 55.0, 100.0)),
        Signal.CORE_TEMPERATURE: _clipped_normal(rng, 36.8, 0.2, 36.3, 37.3),
        Signal.SKIN_TEMPERATURE: _clipped_normal(rng, 32.8, 0.8, 30.5, 35.0),
        Signal.GLUCOSE: _clipped_normal(rng, *glucose),
        Signal.WEIGHT: _clipped_normal(rng, 78.0, 16.0, 42.0, 150.0),
    }


# Amplitude of the slow wander of each signal (two random sines, 20 min to 3 h periods).
_WANDER: Final = MappingProxyType(
    {
        Signal.HEART_RATE: 3.0,
        Signal.SPO2: 0.6,
        Signal.RESPIRATION_RATE: 0.8,
        Signal.SYSTOLIC_BP: 4.0,
        Signal.DIASTOLIC_BP: 2.5,
        Signal.CORE_TEMPERATURE: 0.06,
        Signal.SKIN_TEMPERATURE: 0.3,
        Signal.GLUCOSE: 0.4,
    }
)


def _activity(
    rng: np.random.Generator, duration_s: float, day_origin_s: float
) -> tuple[ActivityBurst, ...]:
    """About one burst an hour while awake, rarely at night (to the bathroom)."""
    bursts: list[ActivityBurst] = []
    for hour_start in np.arange(0.0, duration_s, 3600.0):
        hour_len = min(3600.0, duration_s - hour_start)
        local = ((hour_start + day_origin_s) / 3600.0) % 24.0
        rate = 1.0 if 8.0 <= local < 21.0 else 0.08
        for _ in range(int(rng.poisson(rate * hour_len / 3600.0))):
            start = float(np.floor(hour_start + rng.uniform(0.0, hour_len)))
            length = float(rng.uniform(180.0, 1200.0))
            ramp = Ramp(start, start + 60.0, start + 60.0 + length, start + 240.0 + length)
            bursts.append(ActivityBurst(ramp, float(rng.uniform(0.3, 1.0))))
    bursts.sort(key=lambda b: b.ramp.onset_s)
    return tuple(bursts)


def _meals(
    rng: np.random.Generator, duration_s: float, day_origin_s: float, *, diabetic: bool
) -> tuple[Meal, ...]:
    """Three meals a local day, +-30 min; a meal 6 h before the start still shows."""
    meals: list[Meal] = []
    first_day = int(np.floor((day_origin_s - 6 * 3600.0) / _DAY_S))
    last_day = int(np.floor((day_origin_s + duration_s) / _DAY_S))
    for day in range(first_day, last_day + 1):
        for hour in _MEAL_HOURS:
            at = day * _DAY_S + hour * 3600.0 + rng.uniform(-1800.0, 1800.0) - day_origin_s
            rise = rng.uniform(1.5, 4.0) if diabetic else rng.uniform(0.8, 1.5)
            meals.append(Meal(float(at), float(rise)))
    return tuple(meals)


def draw_physiology(
    rng: np.random.Generator,
    *,
    diabetic: bool,
    duration_s: float,
    day_origin_s: float,
    events: Sequence[ClinicalEvent],
) -> Physiology:
    """A patient drawn from an adult population followed at home or on a ward."""
    baseline = _baseline(rng, diabetic=diabetic)
    bp_amplitude = float(rng.uniform(5.0, 10.0))  # nocturnal dipping of about 10 %
    circadian = {
        Signal.HEART_RATE: float(rng.uniform(4.0, 8.0)),
        Signal.SYSTOLIC_BP: bp_amplitude,
        Signal.DIASTOLIC_BP: 0.6 * bp_amplitude,
        Signal.RESPIRATION_RATE: 0.7,
        Signal.CORE_TEMPERATURE: float(rng.uniform(0.2, 0.4)),
        Signal.SKIN_TEMPERATURE: float(rng.uniform(0.5, 1.0)),
        Signal.WEIGHT: 0.3,
    }
    wander = {
        signal: tuple(
            Oscillation(
                amplitude / 2 * float(rng.uniform(0.5, 1.5)),
                float(rng.uniform(1200.0, 10_800.0)),
                float(rng.uniform(0.0, 2 * np.pi)),
            )
            for _ in range(2)
        )
        for signal, amplitude in _WANDER.items()
    }
    gain = {
        Signal.HEART_RATE: float(rng.uniform(25.0, 45.0)),
        Signal.RESPIRATION_RATE: 6.0,
        Signal.SYSTOLIC_BP: 15.0,
        Signal.DIASTOLIC_BP: 6.0,
        Signal.SPO2: -0.5,
        Signal.SKIN_TEMPERATURE: -0.5,
        Signal.STEP_RATE: _ACTIVE_STEPS_PER_MIN,
    }
    return Physiology(
        MappingProxyType(baseline),
        MappingProxyType(circadian),
        MappingProxyType(wander),
        MappingProxyType(gain),
        day_origin_s,
        _activity(rng, duration_s, day_origin_s),
        _meals(rng, duration_s, day_origin_s, diabetic=diabetic),
        tuple(events),
    )
