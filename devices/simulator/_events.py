"""Clinical events injected into patients: what changes, to which level, for how long.

Each event ramps in, holds a plateau at its level, and ramps out; the ground truth keeps
onset, plateau and end so a detector can be scored against when the level was really there.
Events of one patient never overlap, and each kind appears at least once in any fleet
large enough to host it, so even a short run exercises every detection path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

from .._alerts import Priority
from ._signals import Signal
from ._windows import Ramp

__all__ = ["EVENT_KINDS", "ClinicalEvent", "EventKind", "schedule_events"]


@dataclass(frozen=True, slots=True)
class EventKind:
    name: str
    levels: MappingProxyType[Signal, tuple[float, float]]  # range each level is drawn from
    priority: Priority
    ramp_in_s: tuple[float, float]
    plateau_s: tuple[float, float]
    ramp_out_s: tuple[float, float]
    requires: Signal  # a patient's devices must measure it for the event to be observable
    why: str  # the clinical reason for the priority, for the docs
    diastolic_fraction: tuple[float, float] | None = None  # diastolic level / systolic level


def _kind(
    name: str,
    priority: Priority,
    durations: tuple[tuple[float, float], tuple[float, float], tuple[float, float]],
    why: str,
    diastolic_fraction: tuple[float, float] | None = None,
    **levels: tuple[float, float],
) -> EventKind:
    signals = {Signal(k): v for k, v in levels.items()}
    # Deterioration needs a respiration rate: NEWS2 cannot be scored without one.
    requires = Signal.RESPIRATION_RATE if len(signals) > 1 else next(iter(signals))
    return EventKind(
        name,
        MappingProxyType(signals),
        priority,
        *durations,
        requires,
        why,
        diastolic_fraction,
    )


_MIN = 60.0
EVENT_KINDS: Final[MappingProxyType[str, EventKind]] = MappingProxyType(
    {
        k.name: k
        for k in (
            _kind("desaturation", Priority.HIGH, ((1 * _MIN, 3 * _MIN), (5 * _MIN, 20 * _MIN),
                  (1 * _MIN, 5 * _MIN)), "SpO2 below 88 %: NEWS2 scores 3, hypoxaemia",
                  spo2=(82.0, 87.49)),  # rounds to 82..87: always under 88
            _kind("tachycardia", Priority.MEDIUM, ((0.5 * _MIN, 2 * _MIN),
                  (10 * _MIN, 30 * _MIN), (1 * _MIN, 5 * _MIN)),
                  "one NEWS2 parameter at 3: urgent review, not an emergency on its own",
                  heart_rate=(130.0, 160.0)),
            _kind("bradycardia", Priority.HIGH, ((0.5 * _MIN, 2 * _MIN), (5 * _MIN, 20 * _MIN),
                  (0.5 * _MIN, 3 * _MIN)), "heart rate near 40: risk of syncope and arrest",
                  heart_rate=(35.0, 45.0)),
            _kind("hypotension", Priority.HIGH, ((5 * _MIN, 15 * _MIN), (20 * _MIN, 60 * _MIN),
                  (10 * _MIN, 30 * _MIN)), "systolic under 90: shock until proven otherwise",
                  diastolic_fraction=(0.55, 0.65), systolic_bp=(70.0, 88.0)),
            _kind("fever", Priority.MEDIUM, ((30 * _MIN, 60 * _MIN), (60 * _MIN, 180 * _MIN),
                  (60 * _MIN, 120 * _MIN)), "NEWS2 scores 1 to 2: review within the hour",
                  core_temperature=(38.6, 40.0)),
            _kind("hypoglycaemia", Priority.HIGH, ((20 * _MIN, 40 * _MIN),
                  (15 * _MIN, 45 * _MIN), (10 * _MIN, 20 * _MIN)),
                  "glucose under 3.0 mmol/L (level 2): treat now", glucose=(2.2, 2.9)),
            _kind("deterioration", Priority.HIGH, ((30 * _MIN, 90 * _MIN),
                  (60 * _MIN, 180 * _MIN), (30 * _MIN, 90 * _MIN)),
                  "aggregate NEWS2 of 7 or more: emergency response",
                  respiration_rate=(25.0, 30.0), spo2=(88.0, 91.0), heart_rate=(115.0, 130.0),
                  systolic_bp=(88.0, 100.0), core_temperature=(38.2, 39.0), acvpu=(1.0, 2.0)),
        )
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ClinicalEvent:
    patient_index: int
    kind: str
    ramp: Ramp
    levels: MappingProxyType[Signal, float]
    priority: Priority

    def level(self, signal: Signal) -> float | None:
        return self.levels.get(signal)


def _draw_levels(kind: EventKind, rng: np.random.Generator) -> MappingProxyType[Signal, float]:
    levels: dict[Signal, float] = {}
    for signal, (low, high) in kind.levels.items():
        if signal is Signal.ACVPU:  # new confusion (C) or responds to voice (V)
            levels[signal] = float(rng.integers(int(low), int(high) + 1))
        else:
            levels[signal] = float(rng.uniform(low, high))
    if kind.diastolic_fraction is not None:
        levels[Signal.DIASTOLIC_BP] = levels[Signal.SYSTOLIC_BP] * float(
            rng.uniform(*kind.diastolic_fraction)
        )
    return MappingProxyType(levels)


def _place(kind: EventKind, rng: np.random.Generator, slot_start: float, slot_len: float) -> Ramp:
    """Draw durations and fit them in the slot, compressing all three for short runs."""
    parts = [float(rng.uniform(*r)) for r in (kind.ramp_in_s, kind.plateau_s, kind.ramp_out_s)]
    room = 0.8 * slot_len
    if sum(parts) > room:
        parts = [p * room / sum(parts) for p in parts]
    ramp_in, plateau, ramp_out = (max(1.0, float(np.floor(p))) for p in parts)  # whole seconds
    onset = float(np.floor(slot_start + rng.uniform(0.0, slot_len - sum(parts))))
    return Ramp(
        onset, onset + ramp_in, onset + ramp_in + plateau, onset + ramp_in + plateau + ramp_out
    )


def schedule_events(
    rng: np.random.Generator,
    measurable: Sequence[frozenset[Signal]],
    duration_s: float,
    *,
    share: float,
    per_patient_day: float,
) -> list[ClinicalEvent]:
    """Events for a fleet whose patient ``i`` has devices measuring ``measurable[i]``.

    ``share`` of the patients (at least one per kind when possible) get events; each gets
    ``per_patient_day`` of them per simulated day (at least one), in non-overlapping slots.
    """
    patients = len(measurable)
    if share <= 0 or per_patient_day <= 0:
        return []
    kinds = list(EVENT_KINDS.values())
    order = [int(i) for i in rng.permutation(patients)]
    first: dict[int, int] = {}  # patient -> index of its first kind
    for k, kind in enumerate(kinds):  # every kind once, on a patient able to show it
        chosen = next((p for p in order if p not in first and kind.requires in measurable[p]), None)
        if chosen is not None:
            first[chosen] = k
    wanted = max(len(first), min(patients, round(share * patients)))
    cycle = 0
    for p in order:
        if len(first) >= wanted:
            break
        if p in first:
            continue
        for step in range(len(kinds)):
            k = (cycle + step) % len(kinds)
            if kinds[k].requires in measurable[p]:
                first[p], cycle = k, k + 1
                break
    per_patient = max(1, round(per_patient_day * duration_s / 86_400))
    margin = min(300.0, 0.05 * duration_s)
    slot_len = (duration_s - 2 * margin) / per_patient
    events: list[ClinicalEvent] = []
    for p in sorted(first):
        k = first[p]
        for slot in range(per_patient):
            while kinds[k % len(kinds)].requires not in measurable[p]:
                k += 1
            kind = kinds[k % len(kinds)]
            ramp = _place(kind, rng, margin + slot * slot_len, slot_len)
            events.append(ClinicalEvent(p, kind.name, ramp, _draw_levels(kind, rng), kind.priority))
            k += 1
    return events
