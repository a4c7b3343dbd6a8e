"""A simulated fleet for the demo and tests: patients, their devices, and abnormal episodes.

Deterministic for a given seed and clock, so a run can be replayed. Signals here are simple
(baseline plus noise, episodes as level shifts); the realistic simulator with ground truth
(circadian rhythm, artefacts, lost signal, clock skew) extends this in the devices issue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Final

import orjson

from ._identity import pseudonymise
from ._registry import DeviceBinding
from ._time import us_to_datetime
from ._topics import device_topic

__all__ = [
    "FLEET_PROFILES",
    "Episode",
    "Fleet",
    "FleetSimulator",
    "OutgoingMessage",
    "SimDevice",
    "build_fleet",
]


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    name: str
    metrics: tuple[str, ...]
    period_s: float  # one reading per metric every period
    upload_every: int  # readings per metric grouped into one message (1 = single payload)


FLEET_PROFILES: Final = {
    t.name: t
    for t in (
        DeviceProfile("smartwatch", ("heart_rate", "spo2"), 1.0, 5),
        DeviceProfile("ecg_patch", ("heart_rate", "respiration_rate"), 2.0, 1),
        DeviceProfile("bp_cuff", ("systolic_bp", "diastolic_bp"), 10.0, 1),
        DeviceProfile("thermometer", ("body_temperature",), 10.0, 1),
    )
}

_BASELINE: Final = {
    "heart_rate": (75.0, 8.0, 2.0),  # patient mean, between-patient sd, reading noise sd
    "spo2": (97.0, 1.0, 0.6),
    "respiration_rate": (15.0, 2.0, 1.0),
    "systolic_bp": (122.0, 10.0, 4.0),
    "diastolic_bp": (76.0, 6.0, 3.0),
    "body_temperature": (36.8, 0.2, 0.05),
}
_DECIMALS: Final = {"body_temperature": 1}

EPISODE_KINDS: Final = {
    # kind: (metric, level during the episode, duration in seconds)
    "desaturation": ("spo2", 86.0, 25.0),
    "tachycardia": ("heart_rate", 142.0, 25.0),
    "fever": ("body_temperature", 39.3, 60.0),
    "hypotension": ("systolic_bp", 82.0, 60.0),
}


@dataclass(frozen=True, slots=True)
class SimDevice:
    device_id: str
    device_type: str
    tenant: str
    care_unit: str
    patient: str


@dataclass(frozen=True, slots=True)
class Episode:
    patient: str
    kind: str
    metric: str
    level: float
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    payload: bytes
    readings: int


@dataclass(slots=True)
class _DeviceClock:
    device: SimDevice
    next_due_s: float
    seq: int = 0
    pending: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Fleet:
    devices: tuple[SimDevice, ...]
    episodes: tuple[Episode, ...]
    baselines: dict[str, dict[str, float]]

    def bindings(self, bound_since_us: int) -> list[tuple[DeviceBinding, str]]:
        return [
            (
                DeviceBinding(d.device_id, d.tenant, d.care_unit, d.patient, bound_since_us),
                d.device_type,
            )
            for d in self.devices
        ]


def build_fleet(
    *,
    patients: int,
    seed: int,
    pseudonym_key: bytes,
    tenant: str = "chu-demo",
    care_units: tuple[str, ...] = ("cardiology", "pneumology"),
    episode_share: float = 0.1,
    episode_window_s: tuple[float, float] = (3.0, 15.0),
) -> Fleet:
    rng = random.Random(seed)  # noqa: S311 - reproducible simulation, not security
    devices: list[SimDevice] = []
    episodes: list[Episode] = []
    baselines: dict[str, dict[str, float]] = {}
    n_episodes = max(3, round(patients * episode_share)) if patients else 0
    kinds = list(EPISODE_KINDS)
    for index in range(patients):
        patient = pseudonymise(f"DEMO-{seed}-{index:05d}", pseudonym_key)
        unit = care_units[index % len(care_units)]
        for type_name in FLEET_PROFILES:
            devices.append(
                SimDevice(f"{type_name[:2]}-{seed}-{index:05d}", type_name, tenant, unit, patient)
            )
        baselines[patient] = {m: rng.gauss(mu, sd) for m, (mu, sd, _) in _BASELINE.items()}
        if index < n_episodes:
            kind = kinds[index % len(kinds)]
            metric, level, duration = EPISODE_KINDS[kind]
            start = rng.uniform(*episode_window_s)
            episodes.append(Episode(patient, kind, metric, level, start, start + duration))
    return Fleet(tuple(devices), tuple(episodes), baselines)


class FleetSimulator:
    """Produces the messages each device sends as simulated time advances."""

    def __init__(self, fleet: Fleet, *, seed: int, start_us: int) -> None:
        self._fleet = fleet
        self._rng = random.Random(seed + 1)  # noqa: S311 - reproducible simulation
        self._start_us = start_us
        self._clocks = [_DeviceClock(d, 0.0) for d in fleet.devices]
        self._episodes: dict[tuple[str, str], list[Episode]] = {}
        for e in fleet.episodes:
            self._episodes.setdefault((e.patient, e.metric), []).append(e)

    def value(self, patient: str, metric: str, t_s: float) -> float:
        for episode in self._episodes.get((patient, metric), ()):
            if episode.start_s <= t_s < episode.end_s:
                base = episode.level
                break
        else:
            base = self._fleet.baselines[patient][metric]
        value = base + self._rng.gauss(0.0, _BASELINE[metric][2])
        if metric == "spo2":
            value = min(value, 100.0)
        return round(value, _DECIMALS.get(metric, 0))

    def advance(self, t_s: float) -> list[OutgoingMessage]:
        """All messages due up to ``t_s`` seconds after the start."""
        out: list[OutgoingMessage] = []
        for clock in self._clocks:
            dtype = FLEET_PROFILES[clock.device.device_type]
            while clock.next_due_s <= t_s:
                at = us_to_datetime(self._start_us + int(clock.next_due_s * 1e6))
                for metric in dtype.metrics:
                    clock.seq += 1
                    value = self.value(clock.device.patient, metric, clock.next_due_s)
                    unit = _unit_as_sent(clock.device, metric)
                    if unit == "[degF]":
                        value = round(value * 9 / 5 + 32, 1)
                    clock.pending.append(
                        {"seq": clock.seq, "metric": metric, "value": value, "unit": unit,
                         "measured_at": at.isoformat().replace("+00:00", "Z")}
                    )  # fmt: skip
                clock.next_due_s += dtype.period_s
                if len(clock.pending) >= dtype.upload_every * len(dtype.metrics):
                    out.append(self._flush(clock))
        return out

    def _flush(self, clock: _DeviceClock) -> OutgoingMessage:
        device = clock.device
        readings, clock.pending = clock.pending, []
        if len(readings) == 1:
            body: dict[str, object] = {"v": 1, "device_id": device.device_id, **readings[0]}
        else:
            body = {"v": 1, "device_id": device.device_id, "readings": readings}
        return OutgoingMessage(
            device_topic(device.tenant, device.device_id), orjson.dumps(body), len(readings)
        )


def _unit_as_sent(device: SimDevice, metric: str) -> str:
    """Half the thermometers report Fahrenheit, to exercise unit normalisation."""
    units = {
        "heart_rate": "/min",
        "spo2": "%",
        "respiration_rate": "/min",
        "systolic_bp": "mm[Hg]",
        "diastolic_bp": "mm[Hg]",
        "body_temperature": "Cel",
    }
    if metric == "body_temperature" and int(device.device_id.rsplit("-", 1)[1]) % 2:
        return "[degF]"
    return units[metric]
