"""Threshold detection: persistence, hysteresis, one open alert per rule, idempotent replays."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from types import MappingProxyType

import orjson
import pytest

from devices import AlertEvent, AlertEventKind, Priority, ReadingBatch, alert_id_for
from streams import DEFAULT_RULES, PatientState, ThresholdRule, detect
from streams._detect import rules_by_metric

PATIENT = "p-aaaaaaaaaaaaaaaaaaaaaaaa"
T0_US = 1_740_000_000_000_000
SECOND = 1_000_000

Reading = tuple[str, float, int]  # metric, value, seconds after T0


def make_batch(readings: Sequence[Reading], patient: str = PATIENT) -> ReadingBatch:
    return ReadingBatch(
        "chu-a",
        "cardiology",
        patient,
        "ec-0001",
        tuple(m for m, _, _ in readings),
        tuple(float(v) for _, v, _ in readings),
        tuple(T0_US + t * SECOND for _, _, t in readings),
        tuple(range(len(readings))),
        tuple(T0_US + t * SECOND + 500 for _, _, t in readings),
    )


def heart_rates(values: Sequence[float], start_s: int = 0) -> list[Reading]:
    return [("heart_rate", v, start_s + i) for i, v in enumerate(values)]


def feed(
    state: PatientState, values: Sequence[float], start_s: int = 0, metric: str = "heart_rate"
) -> list[list[AlertEvent]]:
    """One batch per reading, as a slow device would deliver them."""
    return [detect(make_batch([(metric, v, start_s + i)]), state) for i, v in enumerate(values)]


def kinds(events: Sequence[AlertEvent]) -> list[AlertEventKind]:
    return [e.kind for e in events]


def test_default_rules_are_consistent() -> None:
    ids = [r.rule_id for r in DEFAULT_RULES]
    assert len(ids) == len(set(ids))
    for rule in DEFAULT_RULES:
        assert rule.direction in {"above", "below"}
        assert rule.persistence >= 1
        # hysteresis: the clear level is on the safe side of the limit
        if rule.direction == "above":
            assert rule.clear_at < rule.limit
        else:
            assert rule.clear_at > rule.limit


def test_threshold_rule_predicates() -> None:
    high = ThresholdRule("h", "heart_rate", "above", 130, 125, Priority.HIGH)
    assert high.breached(130.5) and not high.breached(130)
    assert high.cleared(125) and not high.cleared(125.5)
    low = ThresholdRule("l", "spo2", "below", 90, 92, Priority.HIGH)
    assert low.breached(89.9) and not low.breached(90)
    assert low.cleared(92) and not low.cleared(91.9)


# -- persistence -----------------------------------------------------------------------------


def test_alert_opens_only_after_persistence_consecutive_breaches() -> None:
    state: PatientState = {}
    results = feed(state, [135, 135, 136])
    assert results[0] == [] and results[1] == []
    [event] = results[2]
    assert event.kind is AlertEventKind.OPENED
    assert event.alert_id == alert_id_for(PATIENT, "heart_rate_high", T0_US)  # first breach
    assert event.at_us == T0_US + 2 * SECOND  # the reading that completed the persistence
    assert event.value == 136.0
    assert event.rule == "heart_rate_high"
    assert event.metric == "heart_rate"
    assert event.priority is Priority.HIGH
    assert (event.tenant, event.care_unit, event.patient) == ("chu-a", "cardiology", PATIENT)
    assert event.message == "heart_rate 136 is above 130"


def test_the_limit_itself_is_not_a_breach() -> None:
    state: PatientState = {}
    assert [e for batch in feed(state, [130] * 10) for e in batch] == []


def test_a_safe_reading_resets_the_persistence_count() -> None:
    state: PatientState = {}
    # two breaches, a reading on the safe side of clear_at (125), then two breaches: nothing
    assert [e for b in feed(state, [135, 135, 124, 135, 135]) for e in b] == []
    [event] = detect(make_batch(heart_rates([135], start_s=5)), state)
    assert event.kind is AlertEventKind.OPENED
    # the episode starts at the first breach after the reset (t = 3 s)
    assert event.alert_id == alert_id_for(PATIENT, "heart_rate_high", T0_US + 3 * SECOND)


def test_a_reading_between_limit_and_clear_at_pauses_the_count() -> None:
    state: PatientState = {}
    # 128 is neither a breach (> 130) nor safe (<= 125): the episode goes on, uncounted
    assert [e for b in feed(state, [135, 135, 128]) for e in b] == []
    [event] = detect(make_batch(heart_rates([135], start_s=3)), state)
    assert event.kind is AlertEventKind.OPENED
    assert event.alert_id == alert_id_for(PATIENT, "heart_rate_high", T0_US)


def test_hold_s_needs_the_condition_for_that_long_in_event_time() -> None:
    rule = ThresholdRule("cgm_low", "heart_rate", "below", 3.0, 3.9, Priority.HIGH, 3, 900.0)
    rules = rules_by_metric((rule,))  # at 0, 5 and 10 min: three readings, 10 min held
    state: PatientState = {}
    minute = 60 * SECOND
    early = make_batch([("heart_rate", v, 300 * i) for i, v in enumerate([2.5, 2.6, 2.7])])
    assert detect(early, state, rules) == []
    [event] = detect(make_batch(heart_rates([2.8], start_s=900)), state, rules)
    assert event.kind is AlertEventKind.OPENED
    assert event.at_us == T0_US + 15 * minute


def test_persistence_counts_across_batches_and_within_one_batch_alike() -> None:
    one_batch = detect(make_batch(heart_rates([135, 135, 135])), {})
    state: PatientState = {}
    split = [e for b in feed(state, [135, 135, 135]) for e in b]
    assert one_batch == split
    assert kinds(one_batch) == [AlertEventKind.OPENED]


def test_persistence_of_a_custom_rule_is_honoured() -> None:
    rule = ThresholdRule("hr_over_100", "heart_rate", "above", 100, 90, Priority.LOW, 5)
    rules = MappingProxyType({"heart_rate": (rule,)})
    state: PatientState = {}
    events = [detect(make_batch([("heart_rate", 110, t)]), state, rules) for t in range(5)]
    assert events[:4] == [[]] * 4
    assert kinds(events[4]) == [AlertEventKind.OPENED]
    assert events[4][0].priority is Priority.LOW


def test_persistence_of_one_opens_on_the_first_breach() -> None:
    rule = ThresholdRule("x", "heart_rate", "above", 100, 90, Priority.MEDIUM, persistence=1)
    rules = MappingProxyType({"heart_rate": (rule,)})
    state: PatientState = {}
    assert kinds(detect(make_batch([("heart_rate", 101, 0)]), state, rules)) == [
        AlertEventKind.OPENED
    ]
    assert kinds(detect(make_batch([("heart_rate", 90, 1)]), state, rules)) == [
        AlertEventKind.RESOLVED
    ]


# -- hysteresis --------------------------------------------------------------------------------


def test_no_resolution_while_between_limit_and_clear_at() -> None:
    state: PatientState = {}
    feed(state, [135, 135, 135])
    # 126..129 is below the limit (130) but above clear_at (125): the alert stays open
    between = feed(state, [129, 126, 127, 128, 126, 129, 127, 126], start_s=3)
    assert all(events == [] for events in between)


def test_resolution_after_persistence_readings_on_the_safe_side() -> None:
    state: PatientState = {}
    [opened] = feed(state, [135, 135, 135])[2]
    results = feed(state, [125, 120, 110], start_s=3)  # 125 == clear_at counts as safe
    assert results[0] == [] and results[1] == []
    [resolved] = results[2]
    assert resolved.kind is AlertEventKind.RESOLVED
    assert resolved.alert_id == opened.alert_id
    assert resolved.at_us == T0_US + 5 * SECOND
    assert resolved.value == 110.0
    assert resolved.message == "heart_rate 110 back within 125"


def test_a_reading_back_in_the_band_resets_the_clear_count() -> None:
    state: PatientState = {}
    feed(state, [135, 135, 135])
    assert [e for b in feed(state, [120, 120, 127, 120, 120], start_s=3) for e in b] == []
    assert kinds(detect(make_batch(heart_rates([120], start_s=8)), state)) == [
        AlertEventKind.RESOLVED
    ]


def test_below_rule_with_hysteresis() -> None:
    state: PatientState = {}
    opened = [e for b in feed(state, [89, 88, 89], metric="spo2") for e in b]
    assert kinds(opened) == [AlertEventKind.OPENED]
    assert opened[0].rule == "spo2_low"
    assert opened[0].message == "spo2 89 is below 90"
    # 91 is above the limit but below clear_at 92: no resolution
    assert [e for b in feed(state, [91, 91, 91, 91], start_s=3, metric="spo2") for e in b] == []
    resolved = [e for b in feed(state, [92, 95, 97], start_s=7, metric="spo2") for e in b]
    assert kinds(resolved) == [AlertEventKind.RESOLVED]
    assert resolved[0].alert_id == opened[0].alert_id


# -- one open alert per (patient, rule) ---------------------------------------------------------


def test_one_open_alert_per_patient_and_rule() -> None:
    state: PatientState = {}
    events = [e for b in feed(state, [140] * 30) for e in b]
    assert kinds(events) == [AlertEventKind.OPENED]


def test_a_new_episode_after_resolution_gets_a_new_alert() -> None:
    state: PatientState = {}
    values = [140, 140, 140, 100, 100, 100, 140, 140, 140]
    events = [e for b in feed(state, values) for e in b]
    assert kinds(events) == [
        AlertEventKind.OPENED,
        AlertEventKind.RESOLVED,
        AlertEventKind.OPENED,
    ]
    assert events[0].alert_id == events[1].alert_id
    assert events[2].alert_id != events[0].alert_id
    assert events[2].alert_id == alert_id_for(PATIENT, "heart_rate_high", T0_US + 6 * SECOND)


def test_rules_of_one_metric_are_independent() -> None:
    state: PatientState = {}
    high = [e for b in feed(state, [140, 140, 140]) for e in b]
    low = [e for b in feed(state, [30, 30, 30], start_s=3) for e in b]
    # going from tachycardia to bradycardia: low opens, high resolves only with 3 safe values,
    # and 30 is on the safe side of the high rule
    assert [(e.rule, e.kind) for e in high] == [("heart_rate_high", AlertEventKind.OPENED)]
    assert [(e.rule, e.kind) for e in low] == [
        ("heart_rate_high", AlertEventKind.RESOLVED),
        ("heart_rate_low", AlertEventKind.OPENED),
    ]


def test_patients_have_separate_alerts() -> None:
    batch_a = make_batch(heart_rates([140, 140, 140]), patient="p-a")
    batch_b = make_batch(heart_rates([140, 140, 140]), patient="p-b")
    [a] = detect(batch_a, {})
    [b] = detect(batch_b, {})
    assert a.patient == "p-a" and b.patient == "p-b"
    assert a.alert_id != b.alert_id


# -- ids and replays -----------------------------------------------------------------------------


def test_alert_id_is_deterministic() -> None:
    first = alert_id_for(PATIENT, "spo2_low", T0_US)
    assert first == alert_id_for(PATIENT, "spo2_low", T0_US)
    assert uuid.UUID(first).version == 5
    others = {
        alert_id_for("p-other", "spo2_low", T0_US),
        alert_id_for(PATIENT, "heart_rate_high", T0_US),
        alert_id_for(PATIENT, "spo2_low", T0_US + 1),
    }
    assert first not in others
    assert len(others) == 3


def test_redelivering_the_same_batch_produces_no_new_event() -> None:
    state: PatientState = {}
    batch = make_batch(heart_rates([135, 136, 137, 138]))
    assert kinds(detect(batch, state)) == [AlertEventKind.OPENED]
    before = copy.deepcopy(state)
    assert detect(batch, state) == []
    assert state == before


def test_a_replay_from_scratch_yields_the_same_alert() -> None:
    batch = make_batch(heart_rates([135, 136, 137, 120, 120, 120]))
    assert detect(batch, {}) == detect(batch, {})


def test_late_readings_older_than_the_last_one_are_ignored() -> None:
    state: PatientState = {}
    detect(make_batch(heart_rates([135, 135, 135], start_s=10)), state)
    # safe readings measured before the breaches arrive late: they must not resolve the alert
    assert detect(make_batch(heart_rates([100, 100, 100], start_s=0)), state) == []
    assert detect(make_batch(heart_rates([100, 100, 100], start_s=12)), state) == []
    assert kinds(detect(make_batch(heart_rates([100], start_s=15)), state)) == [
        AlertEventKind.RESOLVED
    ]


def test_out_of_order_readings_in_a_batch_are_processed_by_event_time() -> None:
    # event-time order: 135@0, 120@1, 135@2, 135@3, 135@4 -> episode starts at 2, opens at 4
    shuffled = [
        ("heart_rate", 135, 4),
        ("heart_rate", 120, 1),
        ("heart_rate", 135, 0),
        ("heart_rate", 135, 3),
        ("heart_rate", 135, 2),
    ]
    [event] = detect(make_batch(shuffled), {})
    assert event.kind is AlertEventKind.OPENED
    assert event.at_us == T0_US + 4 * SECOND
    assert event.alert_id == alert_id_for(PATIENT, "heart_rate_high", T0_US + 2 * SECOND)


def test_out_of_order_open_and_resolve_in_one_batch() -> None:
    readings = [("heart_rate", 100, t) for t in (5, 4, 3)] + [
        ("heart_rate", 140, t) for t in (2, 0, 1)
    ]
    events = detect(make_batch(readings), {})
    assert kinds(events) == [AlertEventKind.OPENED, AlertEventKind.RESOLVED]
    assert [e.at_us for e in events] == [T0_US + 2 * SECOND, T0_US + 5 * SECOND]


def test_readings_of_metrics_without_a_rule_are_ignored() -> None:
    state: PatientState = {}
    batch = make_batch([("diastolic_bp", 190, t) for t in range(10)])
    assert detect(batch, state) == []
    assert state == {}


def test_only_metrics_with_rules_change_the_state() -> None:
    state: PatientState = {}
    batch = make_batch([("diastolic_bp", 190, 0), ("spo2", 97, 0)])
    detect(batch, state)
    assert set(state) == {"m:spo2", "r:spo2_low"}


# -- the event record -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(AlertEventKind))
@pytest.mark.parametrize("priority", list(Priority))
def test_alert_event_json_round_trip(kind: AlertEventKind, priority: Priority) -> None:
    event = AlertEvent(
        alert_id_for(PATIENT, "spo2_low", T0_US),
        kind,
        "chu-a",
        "pneumology",
        PATIENT,
        "spo2_low",
        "spo2",
        priority,
        T0_US + 123_456,
        87.5,
        "spo2 87.5 is below 90",
    )
    data = event.to_json()
    assert AlertEvent.from_json(data) == event
    obj = orjson.loads(data)
    assert obj["kind"] == kind.value
    assert obj["priority"] == priority.value
    assert obj["at_us"] == T0_US + 123_456


def test_detected_events_survive_json() -> None:
    events = detect(make_batch(heart_rates([140, 140, 140, 100, 100, 100])), {})
    assert len(events) == 2
    assert [AlertEvent.from_json(e.to_json()) for e in events] == events
