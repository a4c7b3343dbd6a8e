"""NEWS2 on the stream: latest vitals by event time, fresh ones only, band changes as alerts."""

from __future__ import annotations

from devices import AlertEventKind, Priority, ReadingBatch
from streams._detect import PatientState
from streams._early_warning import NEWS2_RULE, news2_step, remember_latest

S = 1_000_000
T0 = 1_790_000_000 * S
NORMAL = {"respiration_rate": 16.0, "spo2": 97.0, "inhaled_oxygen_flow": 0.0, "systolic_bp": 125.0,
          "heart_rate": 72.0, "consciousness": 0.0, "body_temperature": 37.0}  # fmt: skip


def _batch(values: dict[str, float], at_us: int) -> ReadingBatch:
    metrics = tuple(values)
    n = len(metrics)
    return ReadingBatch("t", "ward", "p-1", "obs-1", metrics, tuple(values.values()),
                        (at_us,) * n, tuple(range(n)), (at_us,) * n, "observation_app")  # fmt: skip


def _step(state: PatientState, values: dict[str, float], at_us: int) -> list:  # type: ignore[type-arg]
    batch = _batch(values, at_us)
    remember_latest(batch, [True] * len(batch), state)
    return news2_step(batch, state, freshness_s=3600, raised_us=at_us)


def test_low_score_raises_nothing_and_missing_parameters_wait() -> None:
    state: PatientState = {}
    assert _step(state, {"respiration_rate": 30.0}, T0) == []  # six parameters missing
    assert _step(state, NORMAL, T0 + S) == []  # complete, total 0: low
    assert state["n2"]["band"] == "low"


def test_band_changes_open_escalate_and_resolve_one_alert() -> None:
    state: PatientState = {}
    _step(state, NORMAL, T0)
    # RR 25 scores 3 alone: low-medium, left to the respiration-rate rule.
    assert _step(state, {**NORMAL, "respiration_rate": 25.0}, T0 + 30 * S) == []
    # RR 25 (3) and temperature 39.1 (2): total 5, medium.
    medium = {**NORMAL, "respiration_rate": 25.0, "body_temperature": 39.1}
    assert _step(state, medium, T0 + 60 * S) == []  # must hold 10 minutes first
    assert _step(state, medium, T0 + 600 * S) == []
    [opened] = _step(state, medium, T0 + 660 * S)
    assert (opened.kind, opened.rule) == (AlertEventKind.OPENED, NEWS2_RULE)
    assert opened.priority is Priority.MEDIUM
    assert opened.value == 5.0 and "respiration_rate 3" in opened.message
    # RR 25 (3), SpO2 91 (3), on oxygen (2): total 8, high.
    high = {**NORMAL, "respiration_rate": 25.0, "spo2": 91.0, "inhaled_oxygen_flow": 2.0}
    [escalated] = _step(state, high, T0 + 720 * S)
    assert (escalated.kind, escalated.priority, escalated.level) == (
        AlertEventKind.ESCALATED, Priority.HIGH, 1,
    )  # fmt: skip
    assert escalated.alert_id == opened.alert_id and escalated.value == 8.0
    assert state[f"a:{opened.alert_id}"]["priority"] == "high"
    # Back to medium: nothing new.
    assert _step(state, medium, T0 + 780 * S) == []
    # Low-medium (a single red score) is below the NEWS2 alert bands: resolved.
    [resolved] = _step(state, {**NORMAL, "respiration_rate": 25.0}, T0 + 840 * S)
    assert (resolved.kind, resolved.alert_id) == (AlertEventKind.RESOLVED, opened.alert_id)
    assert f"a:{opened.alert_id}" not in state


def test_a_medium_score_that_does_not_hold_raises_nothing() -> None:
    state: PatientState = {}
    medium = {**NORMAL, "respiration_rate": 25.0, "body_temperature": 39.1}
    assert _step(state, medium, T0) == []
    assert _step(state, NORMAL, T0 + 300 * S) == []  # back to low after 5 minutes
    assert _step(state, medium, T0 + 660 * S) == []  # the hold starts again
    assert state["n2"]["since_us"] == T0 + 660 * S


def test_latest_is_by_event_time_and_stale_values_do_not_count() -> None:
    state: PatientState = {}
    _step(state, NORMAL, T0)
    late = _batch({"respiration_rate": 30.0}, T0 - 60 * S)  # older than what we have
    assert not remember_latest(late, [True], state)
    assert state["v:respiration_rate"]["value"] == 16.0
    # Two hours later only RR is fresh: incomplete, so no score and no alert.
    assert _step(state, {"respiration_rate": 30.0}, T0 + 7200 * S) == []


def test_unusable_readings_are_not_remembered() -> None:
    state: PatientState = {}
    batch = _batch({"spo2": 60.0}, T0)
    assert not remember_latest(batch, [False], state)
    assert "v:spo2" not in state
