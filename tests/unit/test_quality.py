"""Signal quality: artefacts are rejected before detection; lost signal and silence are reported."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from devices import (
    CATALOGUE,
    AlertEventKind,
    Priority,
    RawEnvelope,
    RawMessage,
    ReadingBatch,
    parse_device_topic,
)
from devices._replay import read_numerics
from devices.simulator import RunLog, Simulation, SimulationConfig
from streams import PatientState, ValidationLimits, detect, validate_envelope
from streams._screening import (
    DEFAULT_JUMP_LIMITS,
    ArtefactRules,
    QualityState,
    Rejection,
    RejectionReason,
    Screening,
    screen_batch,
    usable_readings,
)
from streams._technical_alerts import (
    DEFAULT_SILENT_AFTER_S,
    TechnicalKind,
    TechnicalTransition,
    WatchRules,
    check_silence,
    watch_batch,
)

MIMIC = Path(__file__).resolve().parents[1] / "data" / "mimic_s00001_numerics.csv"
PATIENT = "p-aaaaaaaaaaaaaaaaaaaaaaaa"
T0_US = 1_740_000_000_000_000
SECOND = 1_000_000
MINUTE = 60 * SECOND

Reading = tuple[str, float | None, float]  # metric, value (None: no signal), seconds after T0

R = RejectionReason
K = TechnicalKind


def make_batch(
    readings: Sequence[Reading], device: str = "ox-1", *, late_s: float = 0.0
) -> ReadingBatch:
    """One device's readings; each arrives ``late_s`` after it was measured."""
    return ReadingBatch(
        "chu-a",
        "cardiology",
        PATIENT,
        device,
        tuple(m for m, _, _ in readings),
        tuple(None if v is None else float(v) for _, v, _ in readings),
        tuple(T0_US + int(t * SECOND) for _, _, t in readings),
        tuple(range(len(readings))),
        tuple(T0_US + int((t + late_s) * SECOND) for _, _, t in readings),
    )


def series(
    metric: str, values: Sequence[float | None], step_s: float = 15, start_s: float = 0
) -> list[Reading]:
    return [(metric, v, start_s + i * step_s) for i, v in enumerate(values)]


def oximetry(
    spo2: Sequence[float | None], pulse: Sequence[float | None], start_s: float = 0
) -> list[Reading]:
    """SpO2 and pulse of the same beats every 15 s, as an oximeter sends them."""
    out: list[Reading] = []
    pairs = zip(
        series("spo2", spo2, 15, start_s), series("pulse_rate", pulse, 15, start_s), strict=True
    )
    for s, p in pairs:
        out += [s, p]
    return out


def flags(pattern: str) -> tuple[bool, ...]:
    """``"+-+"``: usable, rejected, usable."""
    return tuple(c == "+" for c in pattern)


def screen_each(
    readings: Sequence[Reading], state: QualityState | None = None, **kwargs: Any
) -> tuple[bool, ...]:
    """One batch per reading, as a slow device would deliver them."""
    state = {} if state is None else state
    out: list[bool] = []
    for r in readings:
        out.extend(screen_batch(make_batch([r]), state, **kwargs).usable)
    return tuple(out)


# -- impossible jumps ---------------------------------------------------------------------------


@pytest.mark.parametrize("one_batch", [True, False], ids=["one batch", "batch per reading"])
def test_an_isolated_spike_is_rejected_and_the_return_accepted(one_batch: bool) -> None:
    readings = series("heart_rate", [80, 82, 150, 81, 80])
    if one_batch:
        screening = screen_batch(make_batch(readings), {})
        assert screening.usable == (True, True, False, True, True)
        assert screening.rejections == (Rejection(2, "heart_rate", R.IMPOSSIBLE_JUMP),)
    else:
        assert screen_each(readings) == (True, True, False, True, True)


def test_a_sustained_step_is_accepted_once_the_next_reading_holds_it() -> None:
    # A rhythm change (80 -> 150) is real: only its first reading is held back.
    assert screen_each(series("heart_rate", [80, 150, 151, 149, 150])) == flags("+-+++")
    # and the new level is the reference: a return to 80 is now the step to confirm
    assert screen_each(series("heart_rate", [80, 150, 151, 80, 81])) == flags("+-+-+")


def test_a_real_desaturation_ramp_is_never_rejected() -> None:
    # 97 -> 82 % over a minute: 3-4 points per 15 s, far below the 10-point limit
    readings = oximetry([97, 94, 90, 86, 83, 82, 82], [72] * 7)
    assert all(screen_batch(make_batch(readings), {}).usable)


def test_spo2_dropping_more_than_10_points_within_15_s_is_rejected_unless_it_holds() -> None:
    spike = screen_batch(make_batch(oximetry([97, 84, 97], [72] * 3)), {})
    assert spike.rejections == (Rejection(2, "spo2", R.IMPOSSIBLE_JUMP),)
    held = screen_batch(make_batch(oximetry([97, 84, 84, 83], [72] * 4)), {})
    assert held.usable[::2] == (True, False, True, True)


def test_a_step_is_only_judged_within_the_window_of_its_limit() -> None:
    hr = DEFAULT_JUMP_LIMITS["heart_rate"]
    assert (hr.max_change, hr.within_s) == (50, 30)
    assert screen_each(series("heart_rate", [80, 131], step_s=30)) == (True, False)
    assert screen_each(series("heart_rate", [80, 131], step_s=31)) == (True, True)
    assert screen_each(series("heart_rate", [80, 130], step_s=30)) == (True, True)  # at the limit
    # body temperature: 1 Cel within 5 minutes
    assert screen_each(series("body_temperature", [37.0, 38.1], step_s=120)) == (True, False)
    assert screen_each(series("body_temperature", [37.0, 38.0], step_s=120)) == (True, True)
    assert screen_each(series("body_temperature", [37.0, 38.1], step_s=301)) == (True, True)


def test_a_pending_step_is_confirmed_by_the_next_reading_even_after_a_gap() -> None:
    # 80 -> 150 rejected; the next reading, 10 min later, still at 150 confirms it
    readings = [("heart_rate", 80.0, 0), ("heart_rate", 150.0, 15), ("heart_rate", 150.0, 615)]
    assert screen_each(readings) == (True, False, True)


def test_more_confirmations_reject_longer_spikes_and_delay_real_steps() -> None:
    rules = ArtefactRules(confirm_readings=3)
    assert screen_each(series("heart_rate", [80, 150, 150, 80]), rules=rules) == flags("+--+")
    # the confirmations count even when they come further apart than the limit's window
    assert screen_each(series("heart_rate", [80, 150, 150, 150], step_s=30), rules=rules) == flags(
        "+--+"
    )
    # confirm_readings=1 turns the rule off
    off = ArtefactRules(confirm_readings=1)
    assert screen_each(series("heart_rate", [80, 150, 80]), rules=off) == (True, True, True)
    with pytest.raises(ValueError, match="confirm_readings must be at least 1, got 0"):
        ArtefactRules(confirm_readings=0)


def test_metrics_without_a_jump_limit_are_never_rejected_for_a_jump() -> None:
    assert "systolic_bp" not in DEFAULT_JUMP_LIMITS  # a cuff measures every 15 min
    assert screen_each(series("systolic_bp", [120, 70, 180])) == (True, True, True)


# -- SpO2 needs a plausible pulse ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pulse", "spo2_ok", "pulse_reason"),
    [
        (72.0, True, None),
        (30.0, True, None),
        (250.0, True, None),
        (None, False, R.NO_SIGNAL),
        (0.0, False, R.NO_SIGNAL),  # a raw sensor-off zero, should one get this far
        (25.0, False, R.IMPLAUSIBLE_PULSE),
        (260.0, False, R.IMPLAUSIBLE_PULSE),
    ],
)
def test_spo2_is_usable_only_with_a_plausible_pulse_of_the_same_time(
    pulse: float | None, spo2_ok: bool, pulse_reason: RejectionReason | None
) -> None:
    screening = screen_batch(make_batch([("spo2", 95, 0), ("pulse_rate", pulse, 0)]), {})
    expected = [] if spo2_ok else [Rejection(0, "spo2", R.SPO2_WITHOUT_PULSE)]
    if pulse_reason is not None:
        expected.append(Rejection(1, "pulse_rate", pulse_reason))
    assert list(screening.rejections) == expected


def test_the_pulse_must_be_within_a_few_seconds() -> None:
    near = screen_batch(make_batch([("spo2", 95, 0), ("pulse_rate", 72, 5)]), {})
    far = screen_batch(make_batch([("spo2", 95, 0), ("pulse_rate", 72, 6)]), {})
    assert near.usable == (True, True)
    assert far.usable == (False, True)
    assert far.rejections == (Rejection(0, "spo2", R.SPO2_WITHOUT_PULSE),)


def test_the_pulse_may_come_in_the_previous_batch() -> None:
    state: QualityState = {}
    screen_batch(make_batch([("pulse_rate", 72, 0)]), state, device_type="pulse_oximeter")
    assert screen_batch(
        make_batch([("spo2", 95, 2)]), state, device_type="pulse_oximeter"
    ).usable == (True,)
    # an oximeter that sends no pulse at all: its SpO2 cannot be trusted
    alone = screen_batch(make_batch([("spo2", 95, 60)]), state, device_type="pulse_oximeter")
    assert alone.rejections == (Rejection(0, "spo2", R.SPO2_WITHOUT_PULSE),)


def test_the_pulse_source_depends_on_the_device_type() -> None:
    watch = [("spo2", 95.0, 0), ("heart_rate", None, 0)]  # a watch's pulse is its heart rate
    assert screen_batch(make_batch(watch, "sw-1"), {}, device_type="smartwatch").usable == flags(
        "--"
    )
    # a nurse's observation set: SpO2 read off a finger probe, no pulse check
    app = [("spo2", 95.0, 0)]
    assert screen_batch(
        make_batch(app, "obs-1"), {}, device_type="observation_app"
    ).usable == flags("+")
    # without the type, a device is an oximeter if it sends pulse_rate
    assert screen_batch(make_batch(app, "x-1"), {}).usable == (True,)
    assert screen_batch(make_batch([*app, ("pulse_rate", None, 0)], "x-2"), {}).usable == flags(
        "--"
    )


# -- no signal, plausibility, redelivery --------------------------------------------------------


def test_no_signal_readings_are_never_clinical_but_a_real_zero_is() -> None:
    readings = [
        ("heart_rate", None, 0),
        ("heart_rate", 0.0, 15),
        ("step_count", 0.0, 15),
        ("inhaled_oxygen_flow", 0.0, 15),
        ("respiration_rate", 0.0, 30),
    ]
    screening = screen_batch(make_batch(readings, "bed-1"), {})
    assert screening.usable == (False, False, True, True, False)
    assert screening.counts() == {"no_signal": 3}
    assert not CATALOGUE["step_count"].no_signal_zero


def test_implausible_values_are_rejected_should_one_pass_the_validator() -> None:
    screening = screen_batch(make_batch([("heart_rate", 11.5, 0), ("spo2", 40, 0)], "bed-1"), {})
    assert [r.reason for r in screening.rejections] == [R.IMPLAUSIBLE, R.IMPLAUSIBLE]


def test_a_redelivered_batch_is_rejected_as_not_newer() -> None:
    state: QualityState = {}
    batch = make_batch(series("heart_rate", [80, 150, 80]))
    first = screen_batch(batch, state)
    snapshot = orjson.dumps(state)
    again = screen_batch(batch, state)
    assert first.usable == (True, False, True)
    assert again.usable == (False, False, False)
    assert again.counts() == {"not_newer": 3}
    assert orjson.dumps(state) == snapshot  # the redelivery changed nothing


def test_readings_are_judged_in_event_time_order() -> None:
    shuffled = [("heart_rate", 80.0, 30), ("heart_rate", 150.0, 15), ("heart_rate", 80.0, 0)]
    screening = screen_batch(make_batch(shuffled), {})
    assert screening.usable == (True, False, True)
    assert screening.rejections == (Rejection(1, "heart_rate", R.IMPOSSIBLE_JUMP),)


def test_artefacts_never_reach_threshold_detection() -> None:
    # A probe half off: SpO2 reads 80 % while the pulse is lost. Unscreened, detect alerts.
    readings = oximetry([80] * 5, [None] * 5)
    raw = detect(make_batch(readings), {})
    assert [e.kind for e in raw] == [AlertEventKind.OPENED]
    state: QualityState = {}
    detector: PatientState = {}
    batch = make_batch(readings)
    screening = screen_batch(batch, state, device_type="pulse_oximeter")
    assert screening.counts() == {"spo2_without_pulse": 5, "no_signal": 5}
    assert len(usable_readings(batch, screening)) == 0
    assert detect(usable_readings(batch, screening), detector) == []
    # a spike every other reading is not a desaturation either
    spiky = oximetry([97, 80, 97, 80, 97, 80, 97], [72] * 7)
    b = make_batch(spiky, "ox-2")
    kept = usable_readings(b, screen_batch(b, state))
    assert [v for m, v in zip(kept.metrics, kept.values, strict=True) if m == "spo2"] == [97] * 4
    assert detect(kept, detector) == []


def test_usable_readings_keeps_every_column_in_step() -> None:
    batch = make_batch(series("heart_rate", [80, 150, 81]), late_s=2)
    kept = usable_readings(batch, screen_batch(batch, {}))
    assert kept.values == (80.0, 81.0)
    assert kept.seqs == (0, 2)
    assert kept.measured_at_us == (T0_US, T0_US + 30 * SECOND)
    assert kept.received_at_us == (T0_US + 2 * SECOND, T0_US + 32 * SECOND)
    assert usable_readings(kept, Screening((True, True), ())) is kept
    with pytest.raises(ValueError, match="screening of 2 readings for a batch of 3"):
        usable_readings(batch, Screening((True, True), ()))


# -- signal watch -------------------------------------------------------------------------------


def watch_each(
    readings: Sequence[Reading], state: QualityState, device_type: str = "pulse_oximeter"
) -> list[TechnicalTransition]:
    out: list[TechnicalTransition] = []
    for r in readings:
        batch = make_batch([r])
        screening = screen_batch(batch, state, device_type=device_type)
        out += watch_batch(batch, state, usable=screening.usable, device_type=device_type)
    return out


def test_signal_lost_after_five_minutes_of_no_signal_and_restored_by_a_value() -> None:
    state: QualityState = {}
    # values until 60 s, then no signal from 75 s every 15 s, a value again at 450 s
    readings = series("spo2", [96] * 5) + series("spo2", [None] * 25, start_s=75)
    readings.append(("spo2", 95.0, 450))
    pulses = [("pulse_rate", 70.0 if v is not None else None, t) for _, v, t in readings]
    merged = sorted([*readings, *pulses], key=lambda r: (r[2], r[0]))
    transitions = watch_each(merged, state)
    lost_at, back_at = T0_US + 375 * SECOND, T0_US + 450 * SECOND  # 75 s + 5 min
    assert [(t.metric, t.kind, t.at_us, t.since_us) for t in transitions] == [
        ("pulse_rate", K.SIGNAL_LOST, lost_at, T0_US + 75 * SECOND),
        ("spo2", K.SIGNAL_LOST, lost_at, T0_US + 75 * SECOND),
        ("pulse_rate", K.SIGNAL_RESTORED, back_at, T0_US + 75 * SECOND),
        ("spo2", K.SIGNAL_RESTORED, back_at, T0_US + 75 * SECOND),
    ]
    lost = transitions[1]
    assert lost == TechnicalTransition(
        "chu-a",
        "cardiology",
        PATIENT,
        "ox-1",
        "spo2",
        K.SIGNAL_LOST,
        lost_at,
        T0_US + 75 * SECOND,
        "no usable spo2 from device ox-1 for 5 min",
        Priority.LOW,
    )
    assert lost.opens and lost.condition is K.SIGNAL_LOST
    restored = transitions[3]
    assert restored.message == "spo2 from device ox-1 usable again after 6.2 min"
    assert not restored.opens and restored.condition is K.SIGNAL_LOST
    assert restored.priority is Priority.LOW


def test_a_shorter_loss_raises_nothing() -> None:
    state: QualityState = {}
    readings = [
        ("heart_rate", 70.0, 0),
        *series("heart_rate", [None] * 20, start_s=15),
        ("heart_rate", 70.0, 315),
    ]  # no signal from 15 s to 300 s: 4 min 45 s
    assert watch_each(readings, state, "ecg_patch") == []


def test_the_no_signal_time_is_configurable() -> None:
    state: QualityState = {}
    rules = WatchRules(no_signal_after_s=60)
    batch = make_batch(series("heart_rate", [70, None, None, None, None, None]), "ecg-1")
    [lost] = watch_batch(batch, state, rules=rules)
    assert (lost.kind, lost.at_us, lost.since_us) == (
        K.SIGNAL_LOST,
        T0_US + 75 * SECOND,
        T0_US + 15 * SECOND,
    )
    with pytest.raises(ValueError, match="no_signal_after_s must be positive, got 0"):
        WatchRules(no_signal_after_s=0)


def test_values_rejected_as_artefacts_count_as_lost_signal() -> None:
    # SpO2 values keep coming but the pulse is gone: there is no SpO2 to trust
    state: QualityState = {}
    readings = oximetry([96] + [95] * 21, [70] + [None] * 21)
    batch = make_batch(readings)
    screening = screen_batch(batch, state, device_type="pulse_oximeter")
    transitions = watch_batch(batch, state, usable=screening.usable, device_type="pulse_oximeter")
    assert [(t.metric, t.kind, t.at_us) for t in transitions] == [
        ("spo2", K.SIGNAL_LOST, T0_US + 315 * SECOND),
        ("pulse_rate", K.SIGNAL_LOST, T0_US + 315 * SECOND),
    ]
    # without the screening, any value is a signal
    assert watch_batch(make_batch(readings, "ox-2"), {})[0].metric == "pulse_rate"
    with pytest.raises(ValueError, match="usable has 1 flags for a batch of 44 readings"):
        watch_batch(batch, state, usable=[True])


def test_a_redelivered_or_late_batch_changes_no_transition() -> None:
    state: QualityState = {}
    lost_run = make_batch(series("heart_rate", [70] + [None] * 21), "ecg-1")
    back = make_batch([("heart_rate", 71, 330)], "ecg-1")
    assert [t.kind for t in watch_batch(lost_run, state)] == [K.SIGNAL_LOST]
    assert [t.kind for t in watch_batch(back, state)] == [K.SIGNAL_RESTORED]
    snapshot = orjson.dumps(state)
    assert watch_batch(lost_run, state) == []  # redelivered: older than the last seen
    assert watch_batch(back, state) == []
    assert orjson.dumps(state) == snapshot


# -- silence ------------------------------------------------------------------------------------


def test_a_device_silent_for_its_limit_is_reported_once_then_resumes() -> None:
    state: QualityState = {}
    watch_batch(make_batch(oximetry([96], [70]), late_s=1), state, device_type="pulse_oximeter")
    last = T0_US + SECOND  # arrival of the last message
    assert check_silence(state, last + 599 * SECOND) == []
    [silent] = check_silence(state, last + 600 * SECOND)
    assert silent == TechnicalTransition(
        "chu-a",
        "cardiology",
        PATIENT,
        "ox-1",
        None,
        K.DEVICE_SILENT,
        last + 600 * SECOND,
        last,
        "nothing received from device ox-1 for 10 min",
        Priority.LOW,
    )
    assert silent.opens and silent.condition is K.DEVICE_SILENT
    assert check_silence(state, last + 3600 * SECOND) == []  # reported once
    back = make_batch(oximetry([96], [70], start_s=1800), late_s=1)
    [resumed] = watch_batch(back, state, device_type="pulse_oximeter")
    assert (resumed.kind, resumed.metric, resumed.at_us, resumed.since_us) == (
        K.DEVICE_RESUMED,
        None,
        T0_US + 1801 * SECOND,
        last,
    )
    assert resumed.message == "device ox-1 reporting again after 30 min"
    assert not resumed.opens and resumed.condition is K.DEVICE_SILENT
    assert check_silence(state, T0_US + 2400 * SECOND) == []


def test_the_silence_is_dated_the_same_whatever_the_timer_cadence() -> None:
    def run(check_every_s: int) -> list[TechnicalTransition]:
        state: QualityState = {}
        watch_batch(make_batch([("heart_rate", 70, 0)], "ecg-1"), state, device_type="ecg_patch")
        out: list[TechnicalTransition] = []
        for now_s in range(0, 3601, check_every_s):
            out += check_silence(state, T0_US + now_s * SECOND)
        return out

    assert run(1) == run(7) == run(60) == run(3600)
    assert [t.at_us for t in run(60)] == [T0_US + 600 * SECOND]


def test_silence_limits_come_from_the_device_type() -> None:
    state: QualityState = {}
    for device, device_type in [
        ("sw-1", "smartwatch"),
        ("bpc-1", "bp_cuff"),
        ("x-1", "novel"),
        ("cgm-1", "cgm"),
        ("ecg-1", None),
    ]:
        watch_batch(make_batch([("heart_rate", 70, 0)], device), state, device_type=device_type)
    silent = {t.device_id: t.at_us - T0_US for t in check_silence(state, T0_US + 86_400 * SECOND)}
    assert silent == {
        "sw-1": 900 * SECOND,
        "x-1": 600 * SECOND,
        "cgm-1": 1800 * SECOND,
        "ecg-1": 600 * SECOND,
    }
    assert DEFAULT_SILENT_AFTER_S["bp_cuff"] is None  # measured on demand: never silent
    custom = WatchRules(silent_after_s={"bp_cuff": 3600}, default_silent_after_s=None)
    state = {}
    for device, device_type in [("bpc-1", "bp_cuff"), ("sw-1", "smartwatch")]:
        watch_batch(
            make_batch([("heart_rate", 70, 0)], device),
            state,
            device_type=device_type,
            rules=custom,
        )
    assert [t.device_id for t in check_silence(state, T0_US + 86_400 * SECOND)] == ["bpc-1"]


def test_silence_is_measured_on_arrival_not_on_a_skewed_device_clock() -> None:
    state: QualityState = {}
    # the device's clock is 10 minutes behind: its readings arrive 600 s after "measurement"
    for minute in range(20):
        batch = make_batch([("heart_rate", 70, minute * 60)], "ecg-1", late_s=600)
        watch_batch(batch, state, device_type="ecg_patch")
        assert check_silence(state, T0_US + (minute * 60 + 600) * SECOND) == []


def test_a_backlog_dated_before_the_silence_resumes_no_earlier_than_it_was_declared() -> None:
    state: QualityState = {}
    watch_batch(make_batch([("heart_rate", 70, 0)], "sw-1"), state, device_type="smartwatch")
    [silent] = check_silence(state, T0_US + 1000 * SECOND)
    backlog = make_batch([("heart_rate", 70, 30)], "sw-1", late_s=100)  # arrives at 130 s
    [resumed] = watch_batch(backlog, state, device_type="smartwatch")
    assert resumed.at_us == silent.at_us == T0_US + 900 * SECOND


# -- state --------------------------------------------------------------------------------------


def test_state_is_plain_json_with_q_prefixed_keys() -> None:
    state: QualityState = {}
    batch = make_batch(oximetry([96, 60, 97], [70, 70, 70]))
    watch_batch(batch, state, usable=screen_batch(batch, state).usable)
    assert orjson.loads(orjson.dumps(state)) == state
    assert sorted(state) == [
        "qd:ox-1",
        "qf:ox-1|pulse_rate",
        "qf:ox-1|spo2",
        "qp:ox-1",
        "qw:ox-1|pulse_rate",
        "qw:ox-1|spo2",
    ]
    assert all(not k.startswith(("m:", "r:", "a:")) for k in state)  # the detector's prefixes


# -- the MIMIC record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    screenings: list[Screening]
    batches: list[ReadingBatch]
    transitions: list[TechnicalTransition]
    state: QualityState


def mimic_batches(*, raw_zeros: bool = False) -> Iterator[ReadingBatch]:
    """One batch per minute of a bedside monitor; zeros as the validator passes them (None)."""
    for row in read_numerics(MIMIC):
        at_us = T0_US + int(row.offset.total_seconds()) * SECOND
        metrics = tuple(m for _, m, _ in row.values)
        values = tuple(
            None if v == 0 and CATALOGUE[m].no_signal_zero and not raw_zeros else v
            for _, m, v in row.values
        )
        n = len(metrics)
        yield ReadingBatch(
            "chu-a",
            "icu",
            PATIENT,
            "mimic-1",
            metrics,
            values,
            (at_us,) * n,
            tuple(row.index * 1000 + c for c, _, _ in row.values),
            (at_us,) * n,
        )


def replay(*, through_json: bool, raw_zeros: bool = False) -> Replayed:
    state: QualityState = {}
    out = Replayed([], [], [], state)
    for batch in mimic_batches(raw_zeros=raw_zeros):
        if through_json:  # as the agent does: the state lives in a table as JSON bytes
            state = orjson.loads(orjson.dumps(state))
        screening = screen_batch(batch, state, device_type="bedside_monitor")
        out.transitions.extend(
            watch_batch(batch, state, usable=screening.usable, device_type="bedside_monitor")
        )
        out.transitions.extend(check_silence(state, batch.measured_at_us[0]))
        out.screenings.append(screening)
        out.batches.append(batch)
    return Replayed(out.screenings, out.batches, out.transitions, state)


@pytest.fixture(scope="module")
def mimic() -> Replayed:
    return replay(through_json=False)


def test_mimic_rejections_by_reason(mimic: Replayed) -> None:
    counts: Counter[str] = Counter()
    for s in mimic.screenings:
        counts.update(s.counts())
    total = sum(len(b) for b in mimic.batches)
    assert total == 14_008
    assert counts == {"no_signal": 6603, "spo2_without_pulse": 1, "implausible": 1}
    usable = [
        v
        for b, s in zip(mimic.batches, mimic.screenings, strict=True)
        for v, ok in zip(b.values, s.usable, strict=True)
        if ok
    ]
    assert len(usable) == total - 6605
    assert all(v is not None and v > 0 for v in usable)  # no sensor-off zero is clinical
    # minute 1360: SpO2 96 % while the oximeter's pulse reads 0 (off)
    [(minute, rejection)] = [
        (i, r)
        for i, s in enumerate(mimic.screenings)
        for r in s.rejections
        if r.reason is R.SPO2_WITHOUT_PULSE
    ]
    assert minute == 1360 and rejection.metric == "spo2"
    # minute 1389: a heart rate of 11.5 /min (the validator would have dead-lettered it)
    [(minute, rejection)] = [
        (i, r)
        for i, s in enumerate(mimic.screenings)
        for r in s.rejections
        if r.reason is R.IMPLAUSIBLE
    ]
    assert minute == 1389 and rejection.metric == "heart_rate"


LOST, BACK = K.SIGNAL_LOST, K.SIGNAL_RESTORED
OXIMETRY_LOSSES = [
    (0, 5, 14),
    (15, 20, 52),
    (290, 295, 479),
    (591, 596, 611),
    (1382, 1387, 1402),
    (1439, 1444, 1445),
    (1539, 1544, 1603),
    (1911, 1916, 1917),
]


def test_mimic_technical_transitions(mimic: Replayed) -> None:
    by_metric: dict[str, list[tuple[int, TechnicalKind, int]]] = {}
    for t in mimic.transitions:
        assert t.metric is not None  # never silent: a row every minute
        minute, since = (t.at_us - T0_US) // MINUTE, (t.since_us - T0_US) // MINUTE
        by_metric.setdefault(t.metric, []).append((minute, t.kind, since))
    oximetry = [
        x
        for start, lost, back in OXIMETRY_LOSSES
        for x in ((lost, LOST, start), (back, BACK, start))
    ]
    assert by_metric == {
        # the arterial line: nothing but zeros until minute 1923-1924
        "arterial_systolic_bp": [(5, LOST, 0), (1924, BACK, 0)],
        "arterial_diastolic_bp": [(5, LOST, 0), (1924, BACK, 0)],
        "arterial_mean_bp": [(5, LOST, 0), (1923, BACK, 0)],
        "spo2": oximetry,
        "pulse_rate": oximetry,
        "heart_rate": [(596, LOST, 591), (611, BACK, 591), (1387, LOST, 1382), (1402, BACK, 1382)],
        "respiration_rate": [
            (596, LOST, 591),
            (598, BACK, 591),
            (604, LOST, 599),
            (611, BACK, 599),
            (1387, LOST, 1382),
            (1402, BACK, 1382),
        ],
    }
    assert len(mimic.transitions) == 48
    assert {t.priority for t in mimic.transitions} == {Priority.LOW}


def test_mimic_raw_zeros_are_screened_like_no_signal_readings(mimic: Replayed) -> None:
    raw = replay(through_json=False, raw_zeros=True)
    assert [s.usable for s in raw.screenings] == [s.usable for s in mimic.screenings]
    assert raw.transitions == mimic.transitions


def test_mimic_state_through_json_behaves_identically(mimic: Replayed) -> None:
    via_json = replay(through_json=True)
    assert via_json.screenings == mimic.screenings
    assert via_json.transitions == mimic.transitions
    assert orjson.dumps(via_json.state) == orjson.dumps(mimic.state)
    assert len(orjson.dumps(mimic.state)) < 3000  # small enough for a table value per patient


# -- the simulated fleet, against its ground truth ----------------------------------------------


def _us(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * SECOND)


def test_on_a_simulated_fleet_jumps_are_motion_artefacts_and_silences_are_found(
    make_lookup: Any,
) -> None:
    simulation = Simulation(SimulationConfig(patients=12, minutes=240, seed=3, pseudonym_key=b"k"))
    bindings = simulation.bindings()
    device_types = {b.device_id: t for b, t in bindings}
    lookup = make_lookup(bindings)
    limits = ValidationLimits(future_tolerance_us=300 * SECOND, max_age_us=86_400 * SECOND)
    log = RunLog(simulation.fleet)
    states: dict[str, QualityState] = {}
    jumps: list[tuple[str, str, int]] = []
    transitions: list[TechnicalTransition] = []
    for d in simulation.deliveries():
        log.record(d)
        topic = parse_device_topic(d.topic)
        assert topic is not None
        envelope = RawEnvelope(
            "gw",
            topic.tenant,
            topic.device_id,
            (RawMessage(d.topic, d.send_at_us, orjson.loads(d.payload)),),
        )
        result = validate_envelope(envelope, lookup=lookup, now_us=d.send_at_us, limits=limits)
        for batch in result.batches:
            state = states.setdefault(batch.patient, {})
            device_type = device_types[batch.device_id]
            screening = screen_batch(batch, state, device_type=device_type)
            jumps += [
                (batch.device_id, r.metric, batch.measured_at_us[r.index])
                for r in screening.rejections
                if r.reason is R.IMPOSSIBLE_JUMP
            ]
            transitions += watch_batch(
                batch, state, usable=screening.usable, device_type=device_type
            )
        for state in states.values():
            transitions += check_silence(state, d.send_at_us)
    truth = log.truth()
    skew = {
        x["device_id"]: int((x["clock_skew_s"] or 0) * SECOND)
        for p in truth["patients"]
        for x in p["devices"]
    }
    motion = [
        (a["device_id"], a["metric"], _us(a["start"]), _us(a["end"]))
        for a in truth["artefacts"]
        if a["kind"] == "motion_artefact"
    ]
    onsets = [
        (set(e["devices"]), _us(e["onset"]), _us(e["plateau_start"])) for e in truth["events"]
    ]

    def explained(device: str, metric: str, at_us: int) -> bool:
        true_us = at_us - skew[device]  # the truth is in true time
        in_motion = any(
            device == d and metric == m and s - 60 * SECOND <= true_us <= e + 60 * SECOND
            for d, m, s, e in motion
        )
        at_onset = any(device in ds and s <= true_us <= p + 60 * SECOND for ds, s, p in onsets)
        return in_motion or at_onset

    assert len(jumps) >= 5
    assert [j for j in jumps if not explained(*j)] == []
    # every silence of a watched device longer than its limit is reported, and nothing else
    silent = {(t.device_id, t.since_us) for t in transitions if t.kind is K.DEVICE_SILENT}
    expected = [
        s
        for s in truth["silences"]
        if (limit := DEFAULT_SILENT_AFTER_S.get(device_types[s["device_id"]])) is not None
        and _us(s["end"]) - _us(s["start"]) > limit * SECOND + 300 * SECOND
    ]
    assert len(silent) == len(expected) >= 1
    for s in expected:
        assert any(
            d == s["device_id"] and since <= _us(s["start"]) + 300 * SECOND for d, since in silent
        )
    resumed = [t for t in transitions if t.kind is K.DEVICE_RESUMED]
    assert len(resumed) == len(silent)


# -- the documentation stays true ---------------------------------------------------------------


def test_signal_quality_doc_lists_every_reason_kind_and_limit() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "SIGNAL_QUALITY.md").read_text()
    lines = doc.splitlines()
    for reason in RejectionReason:
        assert any(line.startswith(f"| `{reason.value}` |") for line in lines), reason
    for kind in TechnicalKind:
        assert any(line.startswith(f"| `{kind.value}` |") for line in lines), kind
    for metric, limit in DEFAULT_JUMP_LIMITS.items():
        row = (
            f"| `{metric}` | {limit.max_change:g} {CATALOGUE[metric].unit} | {limit.within_s:g} s |"
        )
        assert any(line.startswith(row) for line in lines), row
    for device_type, seconds in DEFAULT_SILENT_AFTER_S.items():
        after = "never" if seconds is None else f"{seconds / 60:g} min"
        assert f"| `{device_type}` | {after} |" in doc, device_type


def test_a_continuous_metric_missing_while_the_device_sends_others_is_a_lost_signal() -> None:
    state: QualityState = {}
    # a watch: heart rate every 30 s for an hour, SpO2 every 5 min only for the first 10 min
    readings = series("heart_rate", [70.0] * 120, step_s=30)
    readings += series("spo2", [97.0] * 3, step_s=300)  # 0, 300, 600 s
    readings.append(("spo2", 96.0, 3000))  # back after 40 minutes
    merged = sorted(readings, key=lambda r: (r[2], r[0]))
    transitions = watch_each(merged, state, device_type="smartwatch")
    silent_after = 900  # the watch's silence delay
    assert [(t.metric, t.kind, t.at_us, t.since_us) for t in transitions] == [
        ("spo2", K.SIGNAL_LOST, T0_US + (600 + silent_after) * SECOND, T0_US + 600 * SECOND),
        ("spo2", K.SIGNAL_RESTORED, T0_US + 3000 * SECOND, T0_US + 600 * SECOND),
    ]


def test_an_intermittent_metric_may_pause_for_hours() -> None:
    state: QualityState = {}
    # a bedside monitor: cuff pressure at 0 and 3 h, pulse every 15 s in between
    readings = series("pulse_rate", [70.0] * 800, step_s=15)
    readings += [("systolic_bp", 120.0, 0), ("systolic_bp", 118.0, 10_800)]
    merged = sorted(readings, key=lambda r: (r[2], r[0]))
    assert watch_each(merged, state, device_type="bedside_monitor") == []
