"""Realistic readings from the fleet simulator, regrouped into payloads of a chosen size.

The simulator's device types each send a fixed number of readings per message. To compare
payload sizes on the same readings, every patient's readings (an ECG patch, a pulse oximeter,
a blood-pressure cuff and a thermometer: heart and pulse rate, SpO2, respiration rate,
pressures, temperature, with the simulator's share of Fahrenheit thermometers and kPa cuffs)
are pooled in time order and sent as if by one bedside monitor, in messages of exactly ``k``
readings. Device faults and network duplicates are off: every reading is a valued one, sent
once, so a run's readings are its stored readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from devices import (
    DEVICE_TYPES,
    DeviceBinding,
    DeviceStatus,
    RegistryEntry,
    device_topic,
    us_to_datetime,
)
from devices.simulator import (
    DEVICE_SPECS,
    DeliveryRates,
    DeviceMix,
    FaultRates,
    Simulation,
    SimulationConfig,
)

__all__ = ["DEVICE_TYPE", "MonitorStream", "OutgoingPayload", "monitor_streams", "payloads"]

PSEUDONYM_KEY = b"veille-bench"
TENANT = "chu-bench"
DEVICE_TYPE = "bedside_monitor"  # the one device type that may send every pooled metric
# Devices whose every metric a bedside monitor may send: nothing is left out when pooling.
BENCH_DEVICE_MIX: Final[DeviceMix] = (
    (("ecg_patch",), 1.0),
    (("pulse_oximeter",), 1.0),
    (("bp_cuff",), 1.0),
    (("thermometer",), 1.0),
)
# Readings per simulated second of one patient across those devices (about 0.2).
_READINGS_PER_S: Final = sum(
    1.0 / m.period_s for group, _ in BENCH_DEVICE_MIX for m in DEVICE_SPECS[group[0]].metrics
)
_SIM_MARGIN: Final = 1.5  # sampling phases and the cuff's 15 min period: simulate a bit more


@dataclass(frozen=True, slots=True)
class MonitorStream:
    """All readings of one patient, as v1 reading objects in measurement order."""

    device_id: str
    care_unit: str
    patient: str
    readings: tuple[dict[str, Any], ...]

    @property
    def topic(self) -> str:
        return device_topic(TENANT, self.device_id)

    def binding(self, bound_since_us: int) -> DeviceBinding:
        return DeviceBinding(self.device_id, TENANT, self.care_unit, self.patient, bound_since_us)

    def registry_entry(self, bound_since_us: int) -> RegistryEntry:
        return RegistryEntry(
            self.device_id, DEVICE_TYPE, TENANT, DeviceStatus.ACTIVE, self.binding(bound_since_us)
        )


@dataclass(frozen=True, slots=True)
class OutgoingPayload:
    topic: str
    payload: bytes
    readings: int


def monitor_streams(
    *, patients: int, readings_per_patient: int, seed: int, end_us: int, prefix: str
) -> list[MonitorStream]:
    """``patients`` streams of exactly ``readings_per_patient`` readings measured before
    ``end_us``; device ids are ``{prefix}-{index}`` so every run can use fresh devices."""
    minutes = max(1, math.ceil(readings_per_patient / _READINGS_PER_S * _SIM_MARGIN / 60))
    config = SimulationConfig(
        patients=patients,
        minutes=minutes,
        seed=seed,
        tenant=TENANT,
        pseudonym_key=PSEUDONYM_KEY,
        device_mix=BENCH_DEVICE_MIX,
        faults=FaultRates(scale=0.0, clock_skew_share=0.0),
        delivery=DeliveryRates(duplicate=0.0, out_of_order=0.0),
    )
    start_us = (end_us - minutes * 60_000_000) // 1_000_000 * 1_000_000
    simulation = Simulation(config, start=us_to_datetime(start_us))
    fleet = simulation.fleet
    patient_of = {d.device_id: d.patient_index for d in fleet.devices}
    allowed = DEVICE_TYPES[DEVICE_TYPE].metrics
    pooled: list[list[dict[str, Any]]] = [[] for _ in fleet.patients]
    for _, _, payload, _ in simulation.messages():
        body = orjson.loads(payload)
        items = body["readings"] if "readings" in body else [_single_reading(body)]
        pooled[patient_of[body["device_id"]]].extend(r for r in items if r["metric"] in allowed)
    streams: list[MonitorStream] = []
    for patient in fleet.patients:
        readings = sorted(pooled[patient.index], key=_measured)[:readings_per_patient]
        if len(readings) < readings_per_patient:
            raise RuntimeError(
                f"simulator gave {len(readings)} readings for a patient, "
                f"{readings_per_patient} needed; raise _SIM_MARGIN"
            )
        numbered = tuple({**r, "seq": seq} for seq, r in enumerate(readings, start=1))
        streams.append(
            MonitorStream(
                f"{prefix}-{patient.index:05d}", patient.care_unit, patient.pseudonym, numbered
            )
        )
    return streams


def payloads(streams: list[MonitorStream], k: int) -> list[list[OutgoingPayload]]:
    """Rounds of messages: round ``j`` holds message ``j`` of every device, as devices that
    report at the same rate would send them. ``k == 1`` uses the single-reading payload."""
    count = {len(s.readings) for s in streams}
    if len(count) != 1 or count.pop() % k:
        raise ValueError(f"every stream must hold the same multiple of {k} readings")
    rounds = len(streams[0].readings) // k
    return [[_payload(s, s.readings[j * k : (j + 1) * k]) for s in streams] for j in range(rounds)]


def _payload(stream: MonitorStream, readings: tuple[dict[str, Any], ...]) -> OutgoingPayload:
    if len(readings) == 1:
        body: dict[str, Any] = {"v": 1, "device_id": stream.device_id, **readings[0]}
    else:
        body = {"v": 1, "device_id": stream.device_id, "readings": list(readings)}
    return OutgoingPayload(stream.topic, orjson.dumps(body), len(readings))


def _single_reading(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("v", "device_id")}


def _measured(reading: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(reading["measured_at"]))
