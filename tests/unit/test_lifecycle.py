"""Alert lifecycle on the detector state: escalation timing, acknowledgement, resolution."""

from __future__ import annotations

from devices import AlertEvent, AlertEventKind, Priority, ReadingBatch
from streams import detect
from streams._detect import PatientState
from streams._lifecycle import EscalationPolicy, apply_alert_event, due_escalations, open_alerts

S = 1_000_000
T0 = 1_790_000_000 * S
POLICY = EscalationPolicy(after_s=300, max_level=2)


def _spo2(values: list[float], start_us: int, first_seq: int = 1) -> ReadingBatch:
    n = len(values)
    return ReadingBatch(
        "t", "icu", "p-1", "d-1", ("spo2",) * n, tuple(values),
        tuple(start_us + i * S for i in range(n)), tuple(range(first_seq, first_seq + n)),
        tuple(start_us + i * S for i in range(n)),
    )  # fmt: skip


def _open(state: PatientState, raised_us: int = T0) -> AlertEvent:
    [opened] = detect(_spo2([85, 85, 85], T0), state, now_us=raised_us)
    assert opened.kind is AlertEventKind.OPENED
    return opened


def test_escalates_an_unacknowledged_alert_on_time_and_only_twice() -> None:
    state: PatientState = {}
    opened = _open(state, raised_us=T0 + 10 * S)
    assert due_escalations(state, T0 + 10 * S + 299 * S, POLICY) == []
    [first] = due_escalations(state, T0 + 10 * S + 300 * S, POLICY)
    assert (first.kind, first.level, first.priority) == (AlertEventKind.ESCALATED, 1, Priority.HIGH)
    assert first.at_us == T0 + 10 * S + 300 * S  # dated when due, not when noticed
    assert first.alert_id == opened.alert_id
    # The timer fires again before the event came back: the same event, not a new one.
    assert due_escalations(state, T0 + 400 * S, POLICY) == [first]
    assert apply_alert_event(state, first)
    assert not apply_alert_event(state, first)  # replay changes nothing
    [second] = due_escalations(state, T0 + 10 * S + 600 * S, POLICY)
    assert second.level == 2 and second.at_us == T0 + 10 * S + 600 * S
    apply_alert_event(state, second)
    assert due_escalations(state, T0 + 10_000 * S, POLICY) == []  # max level reached


def test_a_low_priority_alert_is_raised_one_step() -> None:
    state: PatientState = {}
    _open(state)
    alert = next(iter(open_alerts(state).values()))
    alert["priority"] = "low"
    [event] = due_escalations(state, T0 + 300 * S, POLICY)
    assert event.priority is Priority.MEDIUM
    apply_alert_event(state, event)
    assert alert["priority"] == "medium" and alert["level"] == 1


def _clinician(opened: AlertEvent, kind: AlertEventKind) -> AlertEvent:
    return AlertEvent(
        opened.alert_id, kind, opened.tenant, opened.care_unit, opened.patient, opened.rule,
        opened.metric, opened.priority, T0 + 60 * S, opened.value, f"{kind} by nurse-7", "nurse-7",
    )  # fmt: skip


def test_acknowledged_alert_does_not_escalate() -> None:
    state: PatientState = {}
    opened = _open(state)
    assert apply_alert_event(state, _clinician(opened, AlertEventKind.ACKNOWLEDGED))
    assert due_escalations(state, T0 + 10_000 * S, POLICY) == []


def test_clinician_resolution_closes_the_episode_and_a_persisting_condition_reopens() -> None:
    state: PatientState = {}
    opened = _open(state)
    assert apply_alert_event(state, _clinician(opened, AlertEventKind.RESOLVED))
    assert open_alerts(state) == {}
    # Still desaturated: after the persistence window a new alert, with a new id.
    events = detect(_spo2([86, 86, 86], T0 + 100 * S, first_seq=10), state, now_us=T0 + 200 * S)
    assert [e.kind for e in events] == [AlertEventKind.OPENED]
    assert events[0].alert_id != opened.alert_id


def test_auto_resolution_forgets_the_alert_and_detector_events_are_not_reapplied() -> None:
    state: PatientState = {}
    opened = _open(state)
    assert not apply_alert_event(state, opened)  # the detector's own opening: already applied
    [resolved] = detect(_spo2([97, 97, 97], T0 + 10 * S, first_seq=4), state, now_us=T0 + 20 * S)
    assert resolved.kind is AlertEventKind.RESOLVED and resolved.actor is None
    assert open_alerts(state) == {}
    assert not apply_alert_event(state, _clinician(opened, AlertEventKind.ACKNOWLEDGED))


def test_event_json_round_trip_keeps_actor_and_level() -> None:
    state: PatientState = {}
    opened = _open(state)
    ack = _clinician(opened, AlertEventKind.ACKNOWLEDGED)
    assert AlertEvent.from_json(ack.to_json()) == ack
    [escalated] = due_escalations(state, T0 + 300 * S, POLICY)
    assert AlertEvent.from_json(escalated.to_json()) == escalated
