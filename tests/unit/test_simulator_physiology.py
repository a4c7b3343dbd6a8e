"""Signals behave like a body: a daily rhythm, activity bursts, meals; events on top."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
import orjson

from devices.simulator import Signal, Simulation, SimulationConfig

DAYTIME = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)  # 08:00 in Paris: patients are up


def _quiet_fleet(patients: int, hours: float, start: datetime = DAYTIME) -> Simulation:
    """No clinical events, so only the everyday physiology shows."""
    config = SimulationConfig(patients=patients, minutes=hours * 60, seed=5, event_share=0)
    return Simulation(config, start=start)


def test_quiet_fleet_has_no_events() -> None:
    assert _quiet_fleet(4, 1).fleet.events == ()


def test_heart_rate_and_temperature_are_lower_at_night() -> None:
    simulation = _quiet_fleet(10, 24, start=datetime(2026, 1, 5, tzinfo=UTC))
    for patient in simulation.fleet.patients:
        physiology = patient.physiology
        t = np.arange(0.0, 86_400.0, 60.0)
        hour = physiology.local_hour(t)
        night = (hour >= 2) & (hour < 5)
        afternoon = (hour >= 14) & (hour < 18)
        resting = physiology.activity_level(t) == 0
        for signal, margin in ((Signal.HEART_RATE, 3.0), (Signal.CORE_TEMPERATURE, 0.2)):
            values = physiology.signal(signal, t)
            by_night = values[night & resting].mean()
            by_day = values[afternoon & resting].mean()
            assert by_night + margin < by_day, (patient.index, signal)


def test_activity_raises_heart_rate_and_steps_together() -> None:
    simulation = _quiet_fleet(8, 6)
    watch_hr: dict[tuple[str, str], float] = {}
    watch_steps: dict[tuple[str, str], float] = {}
    for _, _, payload, _ in simulation.messages():
        body = orjson.loads(payload)
        if not body["device_id"].startswith("sw-"):
            continue
        for r in body["readings"]:
            if r.get("value") is None:
                continue
            key = (body["device_id"], r["measured_at"])
            if r["metric"] == "heart_rate":
                watch_hr[key] = r["value"]
            elif r["metric"] == "step_count":
                watch_steps[key] = r["value"]
    paired = [(watch_steps[k], watch_hr[k]) for k in watch_steps.keys() & watch_hr.keys()]
    assert len(paired) > 1000
    steps, heart = np.array(paired).T
    assert steps.max() > 60  # somebody went for a walk
    assert np.corrcoef(steps, heart)[0, 1] > 0.3
    walking = heart[steps > 50].mean()
    sitting = heart[steps < 10].mean()
    assert walking > sitting + 10


def test_glucose_rises_after_meals_for_patients_with_diabetes() -> None:
    simulation = _quiet_fleet(20, 24, start=datetime(2026, 1, 5, tzinfo=UTC))
    diabetic = [
        p
        for p in simulation.fleet.patients
        if {d.device_type for d in p.devices} & {"cgm", "glucometer"}
    ]
    assert diabetic
    for patient in diabetic:
        physiology = patient.physiology
        t = np.arange(0.0, 86_400.0, 300.0)
        hour = physiology.local_hour(t)
        glucose = physiology.signal(Signal.GLUCOSE, t)
        before_breakfast = glucose[(hour >= 4) & (hour < 6)].mean()
        after_lunch = glucose[(hour >= 13) & (hour < 14)].mean()
        assert after_lunch > before_breakfast + 0.5


def test_every_device_of_a_patient_follows_the_same_heart() -> None:
    """Watch heart rate and oximeter pulse taken within seconds agree, patient by patient."""
    simulation = _quiet_fleet(8, 1)
    devices = {d.device_id: d for d in simulation.fleet.devices}
    series: dict[tuple[int, str], dict[int, float]] = defaultdict(dict)
    for _, _, payload, _ in simulation.messages():
        body = orjson.loads(payload)
        device = devices[body["device_id"]]
        if device.faults.motion_artefacts or device.device_type not in (
            "smartwatch",
            "pulse_oximeter",
        ):
            continue
        for r in body["readings"]:
            if r["metric"] in ("heart_rate", "pulse_rate") and r.get("value") is not None:
                at = datetime.fromisoformat(r["measured_at"].replace("Z", "+00:00"))
                true_s = int(at.timestamp()) - device.faults.clock_skew_s
                series[(device.patient_index, device.device_type)][true_s] = r["value"]
    gaps: dict[int, list[float]] = defaultdict(list)
    for (patient, kind), watch in series.items():
        if kind != "smartwatch" or (patient, "pulse_oximeter") not in series:
            continue
        oximeter = series[(patient, "pulse_oximeter")]
        for t, value in watch.items():
            near = [oximeter[u] for u in range(t - 7, t + 8) if u in oximeter]
            if near:
                gaps[patient].append(abs(value - near[0]))
    assert len(gaps) >= 5
    assert all(np.mean(g) < 5 for g in gaps.values()), {p: np.mean(g) for p, g in gaps.items()}
    means = [
        np.mean(list(v.values())) for (_, kind), v in series.items() if kind == "pulse_oximeter"
    ]
    assert np.std(means) > 3  # while patients differ from one another
