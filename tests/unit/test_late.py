"""Late readings: a past episode is reported by event time, a closed one never reopens."""

from __future__ import annotations

from collections.abc import Sequence

from devices import AlertEventKind, ReadingBatch, alert_id_for
from streams import PatientState, detect, process_readings
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


def _heart_rate(seqs: Sequence[int], high: Sequence[int]) -> ReadingBatch:
    """A bedside monitor's heart rate every 10 ms: 150 /min at the ``high`` seqs, 60-89
    otherwise (the fault suite's stream)."""
    times = tuple(T0_US + 10_000 * s for s in seqs)
    values = tuple(150.0 if s in high else 60.0 + (s * 7) % 30 for s in seqs)
    return ReadingBatch(
        "chu-a", "icu", PATIENT, "mon-1", ("heart_rate",) * len(seqs), values, times,
        tuple(seqs), times, "bedside_monitor",
    )  # fmt: skip


def test_a_backlog_overtaken_by_a_newer_message_of_the_same_device_still_raises_its_episode() -> (
    None
):
    """The screening rejects readings not newer than the device's last as ``not_newer``;
    the late path must still see them (a device's backlog resent after a newer message, a
    watch uploading late). Met in the fault suite: readings 1086-1090 ahead of 986-1085."""
    episode = range(1071, 1076)
    rules = rules_by_metric(tuple(r for r in RULES_BY_ID.values() if r.metric == "heart_rate"))

    def run(messages: Sequence[Sequence[int]]) -> list[tuple[AlertEventKind, int]]:
        state: PatientState = {}
        events = []
        for seqs in messages:
            b = _heart_rate(seqs, episode)
            now = max(b.measured_at_us) + SECOND
            events += [(e.kind, (e.at_us - T0_US) // 10_000)
                       for e in process_readings(b, state, rules, now_us=now)
                       if e.rule == "heart_rate_high"]  # fmt: skip
        return events

    in_order = run([range(s, s + 5) for s in range(1, 1101, 5)])
    assert in_order == [(AlertEventKind.OPENED, 1074), (AlertEventKind.RESOLVED, 1079)]
    overtaken = run([range(1, 1061), range(1086, 1091), range(1061, 1086), range(1091, 1101)])
    kinds = [kind for kind, _ in overtaken]
    assert kinds == [AlertEventKind.OPENED, AlertEventKind.RESOLVED]
    assert 1071 <= overtaken[0][1] <= 1075  # dated inside the episode, by event time
