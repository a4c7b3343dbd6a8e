"""Trend rules against the patient's own baseline: sudden falls and sustained drifts."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from devices import AlertEvent, AlertEventKind, Priority, ReadingBatch
from streams import PatientState
from streams._trends import WARM_UP_US, trend_step

PATIENT = "p-bbbbbbbbbbbbbbbbbbbbbbbb"
T0_US = 1_740_000_000_000_000
SECOND = 1_000_000


def batch(metric: str, values: Sequence[float], start_s: int, step_s: int) -> ReadingBatch:
    times = tuple(T0_US + (start_s + i * step_s) * SECOND for i in range(len(values)))
    return ReadingBatch(
        "chu-a", "cardiology", PATIENT, "ecg-1", (metric,) * len(values),
        tuple(float(v) for v in values), times, tuple(range(len(values))), times,
    )  # fmt: skip


def run(
    state: PatientState, metric: str, values: Sequence[float], start_s: int, step_s: int = 30
) -> list[AlertEvent]:
    b = batch(metric, values, start_s, step_s)
    return trend_step(b, [True] * len(b), state, raised_us=max(b.measured_at_us))


def settled(metric: str, level: float, minutes: int = 60, step_s: int = 30) -> PatientState:
    """A patient whose ``metric`` has held ``level`` (with small noise) for ``minutes``."""
    state: PatientState = {}
    noise = [0.0, 1.0, -1.0, 0.5, -0.5]
    values = [level + noise[i % len(noise)] for i in range(minutes * 60 // step_s)]
    assert run(state, metric, values, 0, step_s) == []
    return state


def test_a_sudden_fall_far_below_the_baseline_opens_a_high_priority_alert() -> None:
    state = settled("heart_rate", 60.0)
    events = run(state, "heart_rate", [44, 43, 42], 3600)
    [opened] = events
    assert (opened.kind, opened.rule, opened.priority) == (
        AlertEventKind.OPENED, "heart_rate_drop", Priority.HIGH,
    )  # fmt: skip
    assert opened.at_us == T0_US + 3660 * SECOND  # the third breaching reading
    [resolved] = [e for e in run(state, "heart_rate", [58, 59, 60], 3690) if e.rule == opened.rule]
    assert resolved.kind is AlertEventKind.RESOLVED
    assert resolved.alert_id == opened.alert_id


def test_the_same_level_reached_slowly_from_a_low_baseline_is_not_a_drop() -> None:
    state = settled("heart_rate", 52.0)
    assert run(state, "heart_rate", [46, 45, 46, 45], 3600) == []  # 6-7 below: a doze


def test_no_drop_alert_before_the_baseline_has_half_an_hour_of_data() -> None:
    state: PatientState = {}
    minutes = WARM_UP_US // SECOND // 60 - 5
    assert run(state, "heart_rate", [70.0] * (minutes * 2), 0) == []
    assert run(state, "heart_rate", [40.0, 41.0, 42.0], minutes * 60) == []


def test_the_baseline_freezes_while_a_fall_is_judged() -> None:
    state = settled("heart_rate", 60.0)
    base = state["t:heart_rate"]["base"]
    run(state, "heart_rate", [44, 43, 42, 43, 42, 41], 3600)
    assert state["t:heart_rate"]["base"] == base


def test_a_sustained_drift_opens_a_medium_alert_after_the_hold_time_only() -> None:
    state = settled("respiration_rate", 14.0, step_s=60)
    assert run(state, "respiration_rate", [22.0] * 20, 3600, 60) == []  # 20 minutes: a walk
    # the recent level (10 min time constant) is 6 above after ~15 min, then must hold 30 min
    events = run(state, "respiration_rate", [22.0] * 40, 3600 + 1200, 60)
    [opened] = events
    assert T0_US + (3600 + 43 * 60) * SECOND <= opened.at_us <= T0_US + (3600 + 50 * 60) * SECOND
    assert (opened.rule, opened.priority) == ("respiration_rate_rising", Priority.MEDIUM)


def test_an_exercise_burst_shorter_than_the_hold_raises_nothing() -> None:
    state = settled("heart_rate", 70.0)
    burst = [110.0] * 40  # 20 minutes of brisk walking
    assert run(state, "heart_rate", burst, 3600) == []
    assert run(state, "heart_rate", [70.0] * 60, 3600 + 1200) == []


def test_late_readings_do_not_move_the_trend_state() -> None:
    state = settled("heart_rate", 60.0)
    before = dict(state["t:heart_rate"])
    assert run(state, "heart_rate", [30.0, 30.0, 30.0], 60) == []
    assert state["t:heart_rate"] == before


def test_state_survives_a_json_round_trip_as_in_the_faust_table() -> None:
    state = settled("heart_rate", 60.0)
    state = orjson.loads(orjson.dumps(state))
    [opened] = run(state, "heart_rate", [44, 43, 42], 3600)
    assert opened.rule == "heart_rate_drop"
