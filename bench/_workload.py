"""Realistic readings from the fleet simulator, regrouped into payloads of a chosen size.

The simulator's device types each send a fixed number of readings per message. To compare
payload sizes on the same readings, every patient's readings (all metrics of the catalogue
that its devices measure, Fahrenheit thermometers included) are pooled in time order and sent
as if by one bedside monitor, in messages of exactly ``k`` readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from devices import (
    FLEET_PROFILES,
    DeviceBinding,
    DeviceStatus,
    FleetSimulator,
    RegistryEntry,
    build_fleet,
    device_topic,
)

__all__ = ["DEVICE_TYPE", "MonitorStream", "OutgoingPayload", "monitor_streams", "payloads"]

PSEUDONYM_KEY = b"veille-bench"
TENANT = "chu-bench"
DEVICE_TYPE = "bedside_monitor"  # the one device type that may send every simulated metric
# Readings per second of one simulated patient across its four devices (about 3.3).
_READINGS_PER_S = sum(len(t.metrics) / t.period_s for t in FLEET_PROFILES.values())
_SIM_MARGIN_S = 15.0  # the smartwatch holds readings for 5 s before it sends them


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
    fleet = build_fleet(
        patients=patients,
        seed=seed,
        pseudonym_key=PSEUDONYM_KEY,
        tenant=TENANT,
        episode_window_s=(0.0, max(1.0, readings_per_patient / _READINGS_PER_S / 2)),
    )
    span_s = math.ceil(readings_per_patient / _READINGS_PER_S + _SIM_MARGIN_S)
    simulator = FleetSimulator(fleet, seed=seed, start_us=end_us - span_s * 1_000_000)
    by_device = {d.device_id: d for d in fleet.devices}
    pooled: dict[str, list[dict[str, Any]]] = {}
    for message in simulator.advance(float(span_s)):
        body = orjson.loads(message.payload)
        device = by_device[body["device_id"]]
        items = body["readings"] if "readings" in body else [_single_reading(body)]
        pooled.setdefault(device.patient, []).extend(items)
    streams: list[MonitorStream] = []
    for index, device in enumerate(d for d in fleet.devices if d.device_type == "smartwatch"):
        readings = sorted(pooled[device.patient], key=_measured)[:readings_per_patient]
        if len(readings) < readings_per_patient:
            raise RuntimeError(
                f"simulator gave {len(readings)} readings for a patient, "
                f"{readings_per_patient} needed; raise _SIM_MARGIN_S"
            )
        numbered = tuple({**r, "seq": seq} for seq, r in enumerate(readings, start=1))
        streams.append(
            MonitorStream(f"{prefix}-{index:05d}", device.care_unit, device.patient, numbered)
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
