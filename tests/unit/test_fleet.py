"""The simulated fleet: deterministic, always valid, episodes at their level, 4 devices each."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

import orjson
import pytest

from devices import (
    CATALOGUE,
    FLEET_PROFILES,
    DeviceBinding,
    Fleet,
    FleetSimulator,
    OutgoingMessage,
    ReadingBatch,
    build_fleet,
    parse_device_topic,
)
from ingest import InboundMessage, plan_forward
from streams import RegistryLookup, ValidationLimits, validate_envelope

KEY = b"unit-test-pseudonym-key"
START_US = 1_740_000_000_000_000
SECOND = 1_000_000
LIMITS = ValidationLimits(future_tolerance_us=300 * SECOND, max_age_us=7 * 86_400 * SECOND)
# Noise standard deviations of the simulator; a level is "reached" within 5 of them.
NOISE_SD = {
    "heart_rate": 2.0,
    "spo2": 0.6,
    "respiration_rate": 1.0,
    "systolic_bp": 4.0,
    "diastolic_bp": 3.0,
    "body_temperature": 0.05,
}


def run(
    fleet: Fleet, *, seed: int, until_s: int, step_s: float = 1.0
) -> list[tuple[float, OutgoingMessage]]:
    simulator = FleetSimulator(fleet, seed=seed, start_us=START_US)
    out: list[tuple[float, OutgoingMessage]] = []
    t = 0.0
    while t <= until_s:
        out.extend((t, m) for m in simulator.advance(t))
        t += step_s
    return out


def validated(
    fleet: Fleet,
    messages: list[tuple[float, OutgoingMessage]],
    lookup: RegistryLookup,
) -> tuple[list[ReadingBatch], int]:
    """Gateway then validator, as the pipeline would; returns batches and dead-letter count."""
    by_tick: dict[float, list[OutgoingMessage]] = defaultdict(list)
    for t, message in messages:
        by_tick[t].append(message)
    batches: list[ReadingBatch] = []
    dead = 0
    for t, tick in by_tick.items():
        now_us = START_US + int(t * SECOND)
        inbound = [
            InboundMessage(m.topic, m.payload, i, 1, now_us, False) for i, m in enumerate(tick)
        ]
        plan = plan_forward(inbound, "gw-sim")
        dead += len(plan.dead_letters)
        for index, envelope in enumerate(plan.envelopes):
            result = validate_envelope(
                envelope, lookup=lookup, now_us=now_us, limits=LIMITS, origin=f"{t}/{index}"
            )
            batches.extend(result.batches)
            dead += len(result.dead_letters)
    return batches, dead


@pytest.fixture
def fleet() -> Fleet:
    return build_fleet(patients=8, seed=11, pseudonym_key=KEY, episode_share=0.5)


@pytest.fixture
def lookup(
    fleet: Fleet, make_lookup: Callable[[Iterable[DeviceBinding]], RegistryLookup]
) -> RegistryLookup:
    return make_lookup(fleet.bindings(START_US - 3600 * SECOND))


def test_same_seed_and_start_give_identical_payload_bytes() -> None:
    first = build_fleet(patients=5, seed=3, pseudonym_key=KEY)
    second = build_fleet(patients=5, seed=3, pseudonym_key=KEY)
    assert first == second
    a = run(first, seed=3, until_s=40, step_s=0.5)
    b = run(second, seed=3, until_s=40, step_s=0.5)
    assert len(a) > 50
    assert [(t, m.topic, m.payload, m.readings) for t, m in a] == [
        (t, m.topic, m.payload, m.readings) for t, m in b
    ]


def test_another_seed_gives_another_run() -> None:
    a = run(build_fleet(patients=3, seed=1, pseudonym_key=KEY), seed=1, until_s=20)
    b = run(build_fleet(patients=3, seed=2, pseudonym_key=KEY), seed=2, until_s=20)
    assert [m.payload for _, m in a] != [m.payload for _, m in b]


def test_there_are_four_devices_per_patient(fleet: Fleet) -> None:
    assert len(fleet.devices) == 4 * 8
    assert len({d.device_id for d in fleet.devices}) == len(fleet.devices)
    per_patient: dict[str, list[str]] = defaultdict(list)
    for device in fleet.devices:
        per_patient[device.patient].append(device.device_type)
    assert len(per_patient) == 8
    for types in per_patient.values():
        assert sorted(types) == sorted(FLEET_PROFILES)
    assert set(fleet.baselines) == set(per_patient)
    # every device of a patient is in the same care unit
    units = {(d.patient, d.care_unit) for d in fleet.devices}
    assert len(units) == 8


def test_patients_are_pseudonymous_and_stable(fleet: Fleet) -> None:
    again = build_fleet(patients=8, seed=11, pseudonym_key=KEY, episode_share=0.5)
    other_key = build_fleet(patients=8, seed=11, pseudonym_key=b"other", episode_share=0.5)
    patients = {d.patient for d in fleet.devices}
    assert patients == {d.patient for d in again.devices}
    assert patients.isdisjoint({d.patient for d in other_key.devices})
    assert all(p.startswith("p-") and "DEMO" not in p for p in patients)


def test_bindings_cover_every_device(fleet: Fleet) -> None:
    bindings = fleet.bindings(START_US)
    assert [b.device_id for b, _ in bindings] == [d.device_id for d in fleet.devices]
    assert [t for _, t in bindings] == [d.device_type for d in fleet.devices]
    assert all(b.bound_since_us == START_US for b, _ in bindings)


def test_every_simulated_payload_validates_without_dead_letters(
    fleet: Fleet, lookup: RegistryLookup
) -> None:
    messages = run(fleet, seed=11, until_s=90)
    batches, dead = validated(fleet, messages, lookup)
    assert dead == 0
    assert sum(len(b) for b in batches) == sum(m.readings for _, m in messages)
    sent_metrics = Counter(
        metric for d in fleet.devices for metric in FLEET_PROFILES[d.device_type].metrics
    )
    assert {m for b in batches for m in b.metrics} == set(sent_metrics)
    for batch in batches:
        for metric, value in zip(batch.metrics, batch.values, strict=True):
            assert CATALOGUE[metric].is_plausible(value)


def test_the_simulator_sends_both_payload_shapes_and_fahrenheit(fleet: Fleet) -> None:
    shapes: set[str] = set()
    units: set[str] = set()
    for _, message in run(fleet, seed=11, until_s=30):
        body = orjson.loads(message.payload)
        topic = parse_device_topic(message.topic)
        assert topic is not None and topic.device_id == body["device_id"]
        readings = body.get("readings", [body])
        assert len(readings) == message.readings
        shapes.add("batch" if "readings" in body else "single")
        units.update(r["unit"] for r in readings)
    assert shapes == {"batch", "single"}
    assert "[degF]" in units and "Cel" in units


def test_fahrenheit_thermometers_validate_to_celsius(fleet: Fleet, lookup: RegistryLookup) -> None:
    batches, dead = validated(fleet, run(fleet, seed=11, until_s=30), lookup)
    assert dead == 0
    temperatures = [
        v
        for b in batches
        for m, v in zip(b.metrics, b.values, strict=True)
        if m == "body_temperature"
    ]
    assert len(temperatures) >= 8
    assert all(34.0 < v < 41.0 for v in temperatures)


def test_episodes_produce_values_at_their_level(fleet: Fleet, lookup: RegistryLookup) -> None:
    assert {e.kind for e in fleet.episodes} == {
        "desaturation",
        "tachycardia",
        "fever",
        "hypotension",
    }
    batches, dead = validated(fleet, run(fleet, seed=11, until_s=90), lookup)
    assert dead == 0
    for episode in fleet.episodes:
        start_us = START_US + int(episode.start_s * SECOND)
        end_us = START_US + int(episode.end_s * SECOND)
        during = [
            v
            for b in batches
            if b.patient == episode.patient
            for m, v, at in zip(b.metrics, b.values, b.measured_at_us, strict=True)
            if m == episode.metric and start_us <= at < end_us
        ]
        assert during, f"no {episode.metric} reading during {episode.kind}"
        tolerance = 5 * NOISE_SD[episode.metric]
        assert all(abs(v - episode.level) <= tolerance for v in during), (episode, during)
        baseline = fleet.baselines[episode.patient][episode.metric]
        after = [
            v
            for b in batches
            if b.patient == episode.patient
            for m, v, at in zip(b.metrics, b.values, b.measured_at_us, strict=True)
            if m == episode.metric and at >= end_us
        ]
        assert after, f"no {episode.metric} reading after {episode.kind}"
        assert all(abs(v - baseline) <= 5 * NOISE_SD[episode.metric] + 0.05 for v in after), (
            episode,
            after,
        )


def test_simulator_value_follows_the_episode(fleet: Fleet) -> None:
    simulator = FleetSimulator(fleet, seed=11, start_us=START_US)
    for episode in fleet.episodes:
        middle = (episode.start_s + episode.end_s) / 2
        value = simulator.value(episode.patient, episode.metric, middle)
        assert abs(value - episode.level) <= 5 * NOISE_SD[episode.metric]
