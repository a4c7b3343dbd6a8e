"""Exertion from the pedometer: a fast pulse during a walk is physiology, not an alarm.

A watch sends the steps counted since its previous step reading. When the step rate is
at least :data:`ACTIVE_STEPS_PER_MIN`, the patient is exerting from that interval's start
until :data:`RECOVERY_S` after its end (heart rate and breathing take minutes to settle).
Rules marked ``exertion_pauses`` neither count nor reset their persistence on readings
taken then: a tachycardia that outlasts the walk is still caught, a walk alone is not.
Patients without a pedometer are judged as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from devices import ReadingBatch

PatientState = dict[str, dict[str, int | float | str | None]]  # as in streams._detect

__all__ = ["ACTIVE_STEPS_PER_MIN", "RECOVERY_S", "exerting", "note_exertion"]

ACTIVE_STEPS_PER_MIN: Final = 20.0  # pottering about the house is a few steps a minute
RECOVERY_S: Final = 300.0
_MAX_INTERVAL_US: Final = 10 * 60 * 1_000_000  # longer gaps say nothing about a rate


def note_exertion(batch: ReadingBatch, usable: Sequence[bool], state: PatientState) -> None:
    """Update the patient's latest exertion interval with the batch's step readings."""
    for i in batch.time_order():
        value = batch.values[i]
        if batch.metrics[i] != "step_count" or value is None or not usable[i]:
            continue
        at_us = batch.measured_at_us[i]
        key = f"x:{batch.device_id}"
        previous = state.get(key, {}).get("last_us")
        state[key] = {"last_us": at_us}
        if not isinstance(previous, int) or not 0 < at_us - previous <= _MAX_INTERVAL_US:
            continue
        per_min = value * 60e6 / (at_us - previous)
        if per_min < ACTIVE_STEPS_PER_MIN:
            continue
        span = state.setdefault("x", {"from_us": previous, "until_us": at_us})
        end = int(span["until_us"] or 0) + int(RECOVERY_S * 1e6)
        if previous > end:  # a new walk, not the same one going on
            span["from_us"] = previous
        span["until_us"] = max(at_us, int(span["until_us"] or 0))


def exerting(state: PatientState, at_us: int) -> bool:
    """Whether ``at_us`` falls in the latest walk or its recovery."""
    span = state.get("x")
    if span is None:
        return False
    start, end = int(span["from_us"] or 0), int(span["until_us"] or 0)
    return start <= at_us <= end + int(RECOVERY_S * 1e6)
