"""A 20-patient, 10-minute simulated run: valid payloads, and a ground truth that holds.

Every check reads the generated messages back the way the pipeline would (JSON, unit
conversion through the catalogue), so it fails if the output stops matching the truth.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pytest

from devices import (
    CATALOGUE,
    DEVICE_TYPES,
    Priority,
    RawEnvelope,
    RawMessage,
    datetime_to_us,
    parse_device_topic,
    pseudonymise,
)
from devices.simulator import (
    DEVICE_SPECS,
    EVENT_KINDS,
    Delivery,
    RunLog,
    Simulation,
    SimulationConfig,
    Upload,
)
from streams import ValidationLimits, validate_envelope

SEED = 7
KEY = b"unit-test-pseudonym-key"
SECOND = 1_000_000
LIMITS = ValidationLimits(future_tolerance_us=300 * SECOND, max_age_us=7 * 86_400 * SECOND)
EXPECTED_PRIORITY = {
    "desaturation": Priority.HIGH,
    "bradycardia": Priority.HIGH,
    "hypotension": Priority.HIGH,
    "hypoglycaemia": Priority.HIGH,
    "deterioration": Priority.HIGH,
    "tachycardia": Priority.MEDIUM,
    "fever": Priority.MEDIUM,
}


@dataclass(frozen=True)
class Reading:
    device_id: str
    device_type: str
    metric: str
    unit: str
    value: float | None  # canonical, None for "no_signal"
    measured_us: int  # as the device dated it
    true_us: int  # with the device's clock skew removed
    sent_us: int
    seq: int


@dataclass(frozen=True)
class Run:
    simulation: Simulation
    deliveries: list[Delivery]
    truth: dict[str, Any]
    readings: list[Reading]

    def device_type(self, device_id: str) -> str:
        return next(
            d.device_type for d in self.simulation.fleet.devices if d.device_id == device_id
        )


def rfc(at: str) -> int:
    return datetime_to_us(datetime.fromisoformat(at.replace("Z", "+00:00")))


def decode(simulation: Simulation, deliveries: list[Delivery]) -> list[Reading]:
    devices = {d.device_id: d for d in simulation.fleet.devices}
    out = []
    for d in deliveries:
        if d.anomaly == "duplicate":
            continue
        device = devices[d.device_id]
        payload = orjson.loads(d.payload)
        for r in payload.get("readings", [payload]):
            metric = CATALOGUE[r["metric"]]
            value = r.get("value")
            measured = rfc(r["measured_at"])
            out.append(
                Reading(
                    d.device_id,
                    device.device_type,
                    r["metric"],
                    r["unit"],
                    None if value is None else metric.to_canonical(value, r["unit"]),
                    measured,
                    measured - device.faults.clock_skew_s * SECOND,
                    d.send_at_us,
                    r["seq"],
                )
            )
    return out


@pytest.fixture(scope="module")
def run() -> Run:
    simulation = Simulation(SimulationConfig(patients=20, minutes=10, seed=SEED, pseudonym_key=KEY))
    log = RunLog(simulation.fleet)
    deliveries = list(simulation.deliveries())
    for d in deliveries:
        log.record(d)
    return Run(simulation, deliveries, log.truth(), decode(simulation, deliveries))


def test_every_payload_validates_without_dead_letters(run: Run, make_lookup: Any) -> None:
    lookup = make_lookup(run.simulation.bindings())
    stored = no_signal = 0
    for d in run.deliveries:
        topic = parse_device_topic(d.topic)
        assert topic is not None and topic.device_id == d.device_id
        envelope = RawEnvelope(
            "gw-test",
            topic.tenant,
            topic.device_id,
            (RawMessage(d.topic, d.send_at_us, orjson.loads(d.payload)),),
        )
        result = validate_envelope(envelope, lookup=lookup, now_us=d.send_at_us, limits=LIMITS)
        assert result.dead_letters == [], [x.detail for x in result.dead_letters]
        stored += sum(len(b.metrics) for b in result.batches)
        no_signal += sum(v is None for b in result.batches for v in b.values)
    assert stored == sum(d.readings for d in run.deliveries) == run.truth["summary"]["readings"]
    assert no_signal > 0


def test_messages_come_in_send_order_within_the_run(run: Run) -> None:
    sends = [d.send_at_us for d in run.deliveries]
    assert sends == sorted(sends)
    start, end = run.simulation.start_us, run.simulation.end_us
    assert all(start <= r.true_us < end for r in run.readings)
    assert all(
        r.true_us <= r.sent_us for r in run.readings
    )  # nothing is sent before it is measured


def test_values_stay_in_the_plausible_ranges(run: Run) -> None:
    values = [r for r in run.readings if r.value is not None]
    assert len(values) > 2000
    for r in values:
        metric = CATALOGUE[r.metric]
        assert metric.plausible_min <= r.value <= metric.plausible_max, r  # type: ignore[operator]


def test_devices_send_only_their_metrics_and_batch_as_their_kind_does(run: Run) -> None:
    shapes: dict[str, set[str]] = defaultdict(set)
    for d in run.deliveries:
        device_type = run.device_type(d.device_id)
        payload = orjson.loads(d.payload)
        shapes[device_type].add("batch" if "readings" in payload else "single")
        for r in payload.get("readings", [payload]):
            assert DEVICE_TYPES[device_type].may_send(r["metric"])
    assert shapes["smartwatch"] == shapes["cgm"] == shapes["pulse_oximeter"] == {"batch"}
    assert shapes["bp_cuff"] == shapes["thermometer"] == shapes["glucometer"] == {"single"}
    assert shapes["observation_app"] == {"batch"}


def test_seq_increases_with_measurement_time_per_device(run: Run) -> None:
    by_device: dict[str, list[Reading]] = defaultdict(list)
    for r in run.readings:
        by_device[r.device_id].append(r)
    for readings in by_device.values():
        ordered = sorted(readings, key=lambda r: r.seq)
        assert [r.seq for r in ordered] == list(range(len(ordered)))  # no gap, no repeat
        times = [r.measured_us for r in ordered]
        assert times == sorted(times)


def test_fleet_follows_the_default_device_mix(run: Run) -> None:
    per_patient = [{d.device_type for d in p.devices} for p in run.simulation.fleet.patients]
    core = {"smartwatch", "pulse_oximeter", "bp_cuff", "thermometer"}
    assert all(core <= types for types in per_patient)
    assert not any({"cgm", "glucometer"} <= types for types in per_patient)
    counts = Counter(t for types in per_patient for t in types)
    for optional in ("cgm", "glucometer", "weight_scale", "ecg_patch", "observation_app"):
        assert 0 < counts[optional] < 20, optional


def test_units_vary_and_each_device_keeps_the_unit_the_truth_names(run: Run) -> None:
    declared = {
        (d["device_id"], metric): unit
        for p in run.truth["patients"]
        for d in p["devices"]
        for metric, unit in d["units"].items()
    }
    seen = {(r.device_id, r.metric): r.unit for r in run.readings}
    assert all(declared[key] == unit for key, unit in seen.items())
    units = {(r.metric, r.unit) for r in run.readings}
    for expected in (
        ("body_temperature", "Cel"), ("body_temperature", "[degF]"),
        ("body_weight", "kg"), ("body_weight", "[lb_av]"),
        ("systolic_bp", "mm[Hg]"), ("systolic_bp", "kPa"),
    ):  # fmt: skip
        assert expected in units
    glucose_units = {u for m, u in units if m in ("blood_glucose", "interstitial_glucose")}
    assert glucose_units == {"mmol/L", "mg/dL"}


def test_truth_names_patients_by_pseudonym_only(run: Run) -> None:
    truth = run.truth
    assert truth["seed"] == SEED and truth["minutes"] == 10
    assert truth["start"] == "2026-01-05T00:00:00Z"
    patients = truth["patients"]
    assert [p["patient"] for p in patients] == [
        pseudonymise(f"SIM-{SEED}-{i}", KEY) for i in range(20)
    ]
    assert "national" not in orjson.dumps(truth).decode()
    listed = {d["device_id"]: d["device_type"] for p in patients for d in p["devices"]}
    bound = {b.device_id: t for b, t in run.simulation.bindings()}
    assert listed == bound
    assert all(b.bound_since_us < run.simulation.start_us for b, _ in run.simulation.bindings())


def test_every_event_kind_is_injected_with_its_window_and_priority(run: Run) -> None:
    events = run.truth["events"]
    assert {e["kind"] for e in events} == set(EVENT_KINDS) == set(EXPECTED_PRIORITY)
    start, end = run.simulation.start_us, run.simulation.end_us
    for e in events:
        assert e["priority"] == EXPECTED_PRIORITY[e["kind"]]
        times = [rfc(e[k]) for k in ("onset", "plateau_start", "plateau_end", "end")]
        assert start <= times[0] < times[1] < times[2] < times[3] <= end
        assert e["metrics"] and set(e["levels"]) == set(e["metrics"]) and e["devices"]


def test_event_levels_are_in_their_clinical_ranges(run: Run) -> None:
    by_kind = {e["kind"]: e["levels"] for e in run.truth["events"]}
    assert 82 <= by_kind["desaturation"]["spo2"] <= 88
    assert 130 <= by_kind["tachycardia"]["heart_rate"] <= 160
    assert 35 <= by_kind["bradycardia"]["heart_rate"] <= 45
    assert 70 <= by_kind["hypotension"]["systolic_bp"] <= 88
    assert 38.6 <= by_kind["fever"]["body_temperature"] <= 40.0
    assert max(by_kind["hypoglycaemia"].values()) < 3.0
    worse = by_kind["deterioration"]
    assert worse["respiration_rate"] >= 25 and worse["spo2"] <= 91
    assert worse["heart_rate"] >= 115 and worse["systolic_bp"] <= 100
    if "consciousness" in worse:
        assert worse["consciousness"] in (1, 2)  # C or V


def _tolerance(device_type: str, metric: str, level: float) -> float:
    """Five noise standard deviations of that sensor, plus one display step."""
    sampled = next(m for m in DEVICE_SPECS[device_type].metrics if m.metric == metric)
    sd = sampled.noise_sd * (level if sampled.relative_noise else 1.0)
    return 5 * sd + 10.0 ** -CATALOGUE[metric].decimals


def test_event_signals_sit_at_their_level_on_the_plateau(run: Run) -> None:
    artefacts = [
        (a["device_id"], rfc(a["start"]), rfc(a["end"]))
        for a in run.truth["artefacts"]
        if a["kind"] == "motion_artefact"
    ]
    devices_of = {
        p["patient"]: {d["device_id"] for d in p["devices"]} for p in run.truth["patients"]
    }
    for e in run.truth["events"]:
        low, high = rfc(e["plateau_start"]), rfc(e["plateau_end"])
        mine = devices_of[e["patient"]]
        checked = 0
        for r in run.readings:
            if r.device_id not in mine or r.metric not in e["levels"] or r.value is None:
                continue
            if not low <= r.true_us < high:
                continue
            if any(d == r.device_id and a <= r.true_us < b for d, a, b in artefacts):
                continue
            level = e["levels"][r.metric]
            assert abs(r.value - level) <= _tolerance(r.device_type, r.metric, level), (e, r)
            checked += 1
        assert checked >= 2, e


def test_events_ramp_in_and_out_rather_than_step(run: Run) -> None:
    for patient in run.simulation.fleet.patients:
        for event in patient.physiology.events:
            signal, level = next(iter(event.levels.items()))
            if signal == "acvpu":
                continue
            ramp = event.ramp
            times = np.array(
                [
                    ramp.onset_s - 1,
                    (ramp.onset_s + ramp.plateau_start_s) / 2,
                    (ramp.plateau_start_s + ramp.plateau_end_s) / 2,
                    (ramp.plateau_end_s + ramp.end_s) / 2,
                ]
            )
            before, rising, plateau, falling = patient.physiology.signal(signal, times)
            assert plateau == pytest.approx(level)
            assert min(before, plateau) < rising < max(before, plateau)
            assert min(before, plateau) - 5 < falling < max(before, plateau) + 5
            assert falling != pytest.approx(plateau)


def test_no_signal_readings_fall_exactly_in_the_truth_windows(run: Run) -> None:
    windows = [
        (w["device_id"], set(w["metrics"]), rfc(w["start"]), rfc(w["end"]))
        for w in run.truth["no_signal"]
    ]
    assert windows
    lost = [r for r in run.readings if r.value is None]
    assert lost
    for r in run.readings:
        inside = any(
            d == r.device_id and r.metric in metrics and a <= r.true_us < b
            for d, metrics, a, b in windows
        )
        assert inside == (r.value is None), r


def test_silenced_devices_measure_and_send_nothing_in_the_window(run: Run) -> None:
    silences = [(s["device_id"], rfc(s["start"]), rfc(s["end"])) for s in run.truth["silences"]]
    assert silences
    for device_id, start, end in silences:
        mine = [r for r in run.readings if r.device_id == device_id]
        assert not any(start <= r.true_us < end for r in mine)
        sent = [d.send_at_us for d in run.deliveries if d.device_id == device_id]
        assert not any(start <= s < end for s in sent)
        assert sent  # the device is alive before or after its flat battery


def test_clock_skew_shifts_measured_at_within_the_future_tolerance(run: Run) -> None:
    skews = {
        a["device_id"]: a["offset_s"] for a in run.truth["artefacts"] if a["kind"] == "clock_skew"
    }
    assert skews and all(s != 0 for s in skews.values())
    prompt = {"thermometer", "bp_cuff", "glucometer", "weight_scale", "observation_app"}
    shown = 0
    for r in run.readings:
        assert r.measured_us - r.sent_us <= 300 * SECOND  # never dead-lettered as "future"
        skew = skews.get(r.device_id, 0)
        if r.device_type in prompt and skew:
            # Sent within seconds of the real measurement, dated off by the skew.
            delay = r.sent_us - r.measured_us
            assert -skew * SECOND <= delay <= (-skew + 1200) * SECOND
            shown += 1
    assert shown > 0


def test_motion_artefacts_spike_the_watch_but_not_the_oximeter(run: Run) -> None:
    windows = [
        (a["device_id"], a["patient"], rfc(a["start"]), rfc(a["end"]))
        for a in run.truth["artefacts"]
        if a["kind"] == "motion_artefact"
    ]
    assert windows
    patient_of = {d["device_id"]: p["patient"] for p in run.truth["patients"] for d in p["devices"]}
    gaps_in, gaps_out = [], []
    pulses: dict[str, list[Reading]] = defaultdict(list)
    for r in run.readings:
        if r.metric == "pulse_rate" and r.device_type == "pulse_oximeter" and r.value is not None:
            pulses[patient_of[r.device_id]].append(r)
    for r in run.readings:
        if r.device_type != "smartwatch" or r.metric != "heart_rate" or r.value is None:
            continue
        near = [
            p for p in pulses[patient_of[r.device_id]] if abs(p.true_us - r.true_us) <= 15 * SECOND
        ]
        if not near:
            continue
        gap = abs(r.value - near[0].value)  # type: ignore[operator]
        spiking = any(d == r.device_id and a <= r.true_us < b for d, _, a, b in windows)
        (gaps_in if spiking else gaps_out).append(gap)
    assert gaps_in and gaps_out
    assert sum(gaps_in) / len(gaps_in) > 20
    assert sum(gaps_out) / len(gaps_out) < 8


def test_truth_lists_the_duplicates_and_late_messages_that_were_sent(run: Run) -> None:
    listed = Counter(
        (a["kind"], a["device_id"], a["seq"])
        for a in run.truth["artefacts"]
        if a["kind"] in ("duplicate", "out_of_order")
    )
    sent = Counter((str(d.anomaly), d.device_id, d.first_seq) for d in run.deliveries if d.anomaly)
    assert listed == sent
    assert run.truth["summary"]["messages"] == len(run.deliveries)


def test_spot_check_devices_measure_again_during_an_event(run: Run) -> None:
    cuff_counts = Counter(
        r.device_id
        for r in run.readings
        if r.device_type == "bp_cuff" and r.metric == "systolic_bp"
    )
    hypotensive = next(e for e in run.truth["events"] if e["kind"] == "hypotension")
    cuff = next(d for d in hypotensive["devices"] if d.startswith("bpc-"))
    assert cuff_counts[cuff] >= 3  # a 15 min schedule gives one reading in 10 min
    assert DEVICE_SPECS["bp_cuff"].upload is Upload.SINGLE
