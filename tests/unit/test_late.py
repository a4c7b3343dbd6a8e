"""Late readings: a past episode is reported by event time, a closed one never reopens."""

from __future__ import annotations

from collections.abc import Sequence

from devices import AlertEventKind, ReadingBatch, alert_id_for
from streams import PatientState, detect
from streams._detect import RULES_BY_ID, rules_by_metric
from streams._episodes import episodes, overlaps, remember_episode
from streams._late import detect_late

PATIENT = "p-cccccccccccccccccccccccc"
T0_US = 1_740_000_000_000_000
SECOND = 1_000_000
RULES = rules_by_metric((RULES_BY_ID["spo2_low"],))


def spo2(values: Sequence[float], start_s: int, step_s: int = 15) -> ReadingBatch:
    times = tuple(T0_US + (start_s + i * step_s) * SECOND for i in range(len(values)))
    return ReadingBatch(
        "chu-a", "pneumology", PATIENT, "ox-1", ("spo2",) * len(values),
        tuple(float(v) for v in values), times, tuple(range(len(values))), times,
    )  # fmt: skip


def process(state: PatientState, b: ReadingBatch) -> list[tuple[AlertEventKind, int]]:
    now = max(b.measured_at_us) + 3600 * SECOND
    events = detect_late(b, state, RULES, now_us=now) + detect(b, state, RULES, now_us=now)
    return [(e.kind, e.at_us) for e in events]


def test_a_late_desaturation_opens_an_alert_dated_in_the_past_then_resolves_it() -> None:
    state: PatientState = {}
    assert process(state, spo2([96] * 10, 3600)) == []  # the present: fine
    late = spo2([95, 87, 86, 86, 88, 93, 94, 95], 600)  # uploaded an hour late
    events = process(state, late)
    assert events == [
        (AlertEventKind.OPENED, T0_US + 645 * SECOND),
        (AlertEventKind.RESOLVED, T0_US + 705 * SECOND),
    ]
    assert episodes(state, "spo2_low") == [(T0_US + 615 * SECOND, T0_US + 705 * SECOND)]


def test_the_same_late_readings_delivered_again_open_nothing() -> None:
    state: PatientState = {}
    process(state, spo2([96] * 10, 3600))
    late = spo2([95, 87, 86, 86, 88, 93, 94, 95], 600)
    assert len(process(state, late)) == 2
    assert process(state, late) == []


def test_a_late_reading_inside_a_resolved_episode_cannot_reopen_it() -> None:
    state: PatientState = {}
    kinds = [k for k, _ in process(state, spo2([87, 86, 85, 94, 95, 96, 96], 0))]
    assert kinds == [AlertEventKind.OPENED, AlertEventKind.RESOLVED]
    # readings of the same minutes from a second oximeter, arriving afterwards
    assert process(state, spo2([86, 85, 85, 86], 5, 10)) == []


def test_a_late_episode_still_open_at_its_last_reading_is_closed_by_the_newer_ones() -> None:
    state: PatientState = {}
    process(state, spo2([96] * 4, 3600))
    events = process(state, spo2([87, 86, 85, 85], 600))
    assert [k for k, _ in events] == [AlertEventKind.OPENED, AlertEventKind.RESOLVED]
    assert events[1][1] == T0_US + 645 * SECOND  # dated at the last late reading
    opened_id = alert_id_for(PATIENT, "spo2_low", T0_US + 600 * SECOND)
    assert f"a:{opened_id}" not in state  # nothing left to escalate


def test_episode_memory_is_bounded_and_overlap_is_inclusive() -> None:
    state: PatientState = {}
    for i in range(20):
        remember_episode(state, "spo2_low", i * 100, i * 100 + 50)
    known = episodes(state, "spo2_low")
    assert len(known) == 8 and known[-1] == (1900, 1950)
    assert overlaps(known, 1950, 1960) and not overlaps(known, 1960, 1990)
