"""The virtual fleet: patients, the devices each one wears, their events and faults.

Everything random is drawn here, once, from generators derived from the seed, so the
fleet (and the ground truth describing it) is known before the first message is produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from .._identity import pseudonymise
from .._metrics import CATALOGUE
from .._registry import DeviceBinding
from .._topics import device_topic
from ._config import SimulationConfig
from ._events import ClinicalEvent, schedule_events
from ._faults import DeviceFaults, draw_faults, draw_window, longest_window_s
from ._physiology import Physiology, draw_physiology
from ._signals import METRIC_SIGNAL, Signal
from ._specs import DEVICE_SPECS, DeviceSpec

__all__ = ["VirtualDevice", "VirtualFleet", "VirtualPatient", "build_fleet", "device_rng"]

# Independent random streams per purpose, so adding a patient never changes another one.
_FLEET, _PHYSIOLOGY, _FAULTS, _DEVICE = 1, 2, 3, 4


def rng_for(seed: int, purpose: int, index: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, purpose, index])))


@dataclass(frozen=True, slots=True)
class VirtualDevice:
    index: int  # position in the fleet: its random stream and its rank on send-time ties
    device_id: str
    device_type: str
    patient_index: int
    topic: str
    units: MappingProxyType[str, str]  # metric -> unit the device reports in
    phase_s: int  # offset of its sampling grid
    faults: DeviceFaults

    @property
    def spec(self) -> DeviceSpec:
        return DEVICE_SPECS[self.device_type]


@dataclass(frozen=True, slots=True)
class VirtualPatient:
    index: int
    sim_id: str  # what the pseudonym is derived from; never a real identifier
    pseudonym: str
    tenant: str
    care_unit: str
    physiology: Physiology
    devices: tuple[VirtualDevice, ...]


@dataclass(frozen=True, slots=True)
class VirtualFleet:
    config: SimulationConfig
    start_us: int
    patients: tuple[VirtualPatient, ...]
    events: tuple[ClinicalEvent, ...]

    @property
    def devices(self) -> tuple[VirtualDevice, ...]:
        return tuple(d for p in self.patients for d in p.devices)

    def bindings(self, bound_since_us: int) -> list[tuple[DeviceBinding, str]]:
        """``(binding, device type)`` per device, to provision the registry before a run."""
        return [
            (
                DeviceBinding(d.device_id, p.tenant, p.care_unit, p.pseudonym, bound_since_us),
                d.device_type,
            )
            for p in self.patients
            for d in p.devices
        ]


def _quota(rng: np.random.Generator, count: int, choices: Sequence[tuple[str, float]]) -> list[str]:
    """``count`` picks in the given shares, each choice at least once when count allows,
    shuffled: a 20-device fleet still shows every unit."""
    picks: list[str] = []
    for name, share in choices[1:]:
        wanted = round(share * count)
        if count >= len(choices):
            wanted = max(wanted, 1)
        picks += [name] * wanted
    picks = picks[:count]
    picks += [choices[0][0]] * (count - len(picks))
    return [picks[int(i)] for i in rng.permutation(count)]


def _device_types(rng: np.random.Generator, config: SimulationConfig) -> list[list[str]]:
    per_patient: list[list[str]] = [[] for _ in range(config.patients)]
    for group, share in config.device_mix:
        wanted = min(config.patients, max(round(share * config.patients), int(share > 0)))
        chosen = rng.choice(config.patients, size=wanted, replace=False)
        for rank, patient in enumerate(chosen.tolist()):
            per_patient[patient].append(group[rank % len(group)])
    order = {t: i for i, t in enumerate(DEVICE_SPECS)}
    return [sorted(types, key=order.__getitem__) for types in per_patient]


def _units(
    rng: np.random.Generator, types: list[list[str]]
) -> dict[tuple[int, str], dict[str, str]]:
    """Unit per (patient, device type) and metric: one choice per device for all its
    metrics sharing a unit family (a cuff shows all three pressures in kPa or none)."""
    units: dict[tuple[int, str], dict[str, str]] = {}
    for device_type, spec in DEVICE_SPECS.items():
        owners = [p for p, ts in enumerate(types) if device_type in ts]
        families: dict[tuple[tuple[str, float], ...], list[str]] = {}
        for sampled in spec.metrics:
            families.setdefault(spec.unit_choices(sampled.metric), []).append(sampled.metric)
        for p in owners:
            units[(p, device_type)] = {}
        for choices, metrics in families.items():
            picks = _quota(rng, len(owners), choices) if choices else []
            for rank, p in enumerate(owners):
                for metric in metrics:
                    canonical = CATALOGUE[metric].unit
                    units[(p, device_type)][metric] = picks[rank] if choices else canonical
    return units


def _prone_to(kind: str, spec: DeviceSpec) -> bool:
    if kind == "silences":
        return spec.battery_out_per_day > 0
    if kind == "no_signal":
        return bool(spec.no_signal_metrics)
    return spec.motion_artefacts_per_h > 0


def _ensure_every_fault(
    rng: np.random.Generator, devices: list[VirtualDevice], config: SimulationConfig
) -> list[VirtualDevice]:
    """Give one device each fault kind nobody drew: short runs still show every kind."""
    if config.faults.scale <= 0:
        return devices
    duration = config.duration_s
    present = {
        "silences": any(d.faults.silences for d in devices),
        "no_signal": any(d.faults.no_signal for d in devices),
        "motion_artefacts": any(d.faults.motion_artefacts for d in devices),
    }
    for kind, seen in present.items():
        if seen:
            continue
        # A window of three sampling periods at least, so the fault shows in the readings.
        candidates = [
            d
            for d in devices
            if _prone_to(kind, d.spec)
            and 3 * d.spec.shortest_period_s <= longest_window_s(kind, duration)
        ]
        if not candidates:
            continue
        target = candidates[int(rng.integers(len(candidates)))]
        window = draw_window(rng, kind, duration, 3.0 * target.spec.shortest_period_s)
        devices[target.index] = replace(target, faults=target.faults.with_window(kind, window))
    if (
        config.faults.clock_skew_share > 0
        and devices
        and not any(d.faults.clock_skew_s for d in devices)
    ):
        target = devices[int(rng.integers(len(devices)))]
        skew = -int(rng.integers(5, config.faults.max_behind_skew_s + 1))
        devices[target.index] = replace(target, faults=replace(target.faults, clock_skew_s=skew))
    return devices


def build_fleet(config: SimulationConfig, start_us: int) -> VirtualFleet:
    rng = rng_for(config.seed, _FLEET)
    types = _device_types(rng, config)
    units = _units(rng, types)
    duration = config.duration_s
    devices: list[VirtualDevice] = []
    for p, patient_types in enumerate(types):
        for device_type in patient_types:
            spec = DEVICE_SPECS[device_type]
            index = len(devices)
            faults_rng = rng_for(config.seed, _FAULTS, index)
            longest = max(m.period_s for m in spec.metrics)
            device_id = f"{spec.code}-{config.seed}-{p:05d}"
            devices.append(
                VirtualDevice(
                    index,
                    device_id,
                    device_type,
                    p,
                    device_topic(config.tenant, device_id),
                    MappingProxyType(units[(p, device_type)]),
                    # Every metric samples at least once, however short the run.
                    int(faults_rng.integers(0, max(1, int(min(longest, duration))))),
                    draw_faults(faults_rng, spec, config.faults, duration),
                )
            )
    devices = _ensure_every_fault(rng, devices, config)
    by_patient: list[list[VirtualDevice]] = [[] for _ in range(config.patients)]
    for device in devices:
        by_patient[device.patient_index].append(device)
    measurable = [
        frozenset(METRIC_SIGNAL[m.metric] for d in mine for m in d.spec.metrics)
        for mine in by_patient
    ]
    events = schedule_events(
        rng,
        measurable,
        duration,
        share=config.event_share,
        per_patient_day=config.events_per_patient_day,
    )
    day_origin_s = (start_us / 1e6 + config.utc_offset_h * 3600.0) % 86_400.0
    patients = []
    for p in range(config.patients):
        sim_id = f"SIM-{config.seed}-{p}"
        mine = tuple(e for e in events if e.patient_index == p)
        physiology = draw_physiology(
            rng_for(config.seed, _PHYSIOLOGY, p),
            diabetic=Signal.GLUCOSE in measurable[p],
            duration_s=duration,
            day_origin_s=day_origin_s,
            events=mine,
        )
        patients.append(
            VirtualPatient(
                p,
                sim_id,
                pseudonymise(sim_id, config.pseudonym_key),
                config.tenant,
                config.care_units[p % len(config.care_units)],
                physiology,
                tuple(by_patient[p]),
            )
        )
    return VirtualFleet(config, start_us, tuple(patients), tuple(events))


def device_rng(seed: int, device: VirtualDevice) -> np.random.Generator:
    """The device's own stream for noise and delivery, consumed in time order."""
    return rng_for(seed, _DEVICE, device.index)
