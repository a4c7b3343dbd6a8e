"""Exertion from the pedometer pauses tachycardia and tachypnoea rules, nothing else."""

from __future__ import annotations

from collections.abc import Sequence

from devices import AlertEventKind, ReadingBatch
from streams import PatientState, detect
from streams._exertion import RECOVERY_S, exerting, note_exertion

PATIENT = "p-dddddddddddddddddddddddd"
T0_US = 1_740_000_000_000_000
SECOND = 1_000_000

Reading = tuple[str, float, int]  # metric, value, seconds after T0


def watch(readings: Sequence[Reading]) -> ReadingBatch:
    times = tuple(T0_US + t * SECOND for _, _, t in readings)
    return ReadingBatch(
        "chu-a", "home", PATIENT, "sw-1", tuple(m for m, _, _ in readings),
        tuple(float(v) for _, v, _ in readings), times, tuple(range(len(readings))), times,
        "smartwatch",
    )  # fmt: skip


def steps(per_minute: Sequence[float], start_s: int = 0) -> list[Reading]:
    return [("step_count", v, start_s + 60 * i) for i, v in enumerate(per_minute)]


def walk(state: PatientState, minutes: int, start_s: int = 0) -> None:
    b = watch(steps([2.0] + [90.0] * minutes, start_s))
    note_exertion(b, [True] * len(b), state)


def test_a_walk_and_its_recovery_count_as_exertion_pottering_does_not() -> None:
    state: PatientState = {}
    b = watch(steps([3.0, 5.0, 4.0, 2.0]))
    note_exertion(b, [True] * len(b), state)
    assert not exerting(state, T0_US + 120 * SECOND)
    walk(state, 10, 600)  # steps reported at 660..1200 s cover 600..1200 s
    assert not exerting(state, T0_US + 599 * SECOND)
    assert exerting(state, T0_US + 600 * SECOND)
    assert exerting(state, T0_US + (1200 + int(RECOVERY_S)) * SECOND)
    assert not exerting(state, T0_US + (1201 + int(RECOVERY_S)) * SECOND)


def test_tachycardia_during_a_walk_raises_nothing_but_one_that_outlasts_it_does() -> None:
    state: PatientState = {}
    walk(state, 10)
    during = watch([("heart_rate", 135.0, 60 + 30 * i) for i in range(20)])
    assert detect(during, state) == []
    after = watch([("heart_rate", 140.0, 1200 + int(RECOVERY_S) + 30 * i) for i in range(1, 4)])
    [opened] = detect(after, state)
    assert (opened.kind, opened.rule) == (AlertEventKind.OPENED, "heart_rate_high")


def test_exertion_does_not_pause_a_low_heart_rate_or_a_desaturation() -> None:
    state: PatientState = {}
    walk(state, 10)
    low = watch([("heart_rate", 35.0, 60 + 30 * i) for i in range(3)])
    assert [e.rule for e in detect(low, state)] == ["heart_rate_low"]
