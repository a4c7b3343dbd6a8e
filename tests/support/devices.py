"""Helpers to provision test devices and build v1 payloads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from devices import DeviceBinding, device_topic, now_us, pseudonymise
from store import upsert_bindings

TENANT = "chu-test"


@dataclass(frozen=True)
class TestDevice:
    device_id: str
    patient: str
    care_unit: str = "icu"

    @property
    def topic(self) -> str:
        return device_topic(TENANT, self.device_id)


def new_device(prefix: str = "it") -> TestDevice:
    tag = uuid.uuid4().hex[:10]
    return TestDevice(f"{prefix}-{tag}", pseudonymise(f"NIR-{tag}", b"test-key"))


async def provision(dsn: str, *devices: TestDevice, since_us: int | None = None) -> None:
    """Provision and bind as bedside monitors, bound an hour ago unless ``since_us``."""
    bound_since = now_us() - 3_600_000_000 if since_us is None else since_us
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await upsert_bindings(
            conn,
            [
                (
                    DeviceBinding(d.device_id, TENANT, d.care_unit, d.patient, bound_since),
                    "bedside_monitor",
                )
                for d in devices
            ],
        )


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def reading(seq: int, metric: str, value: float, unit: str, at: datetime) -> dict[str, object]:
    return {"seq": seq, "metric": metric, "value": value, "unit": unit, "measured_at": iso(at)}


def batch_payload(device: TestDevice, readings: list[dict[str, object]]) -> bytes:
    return orjson.dumps({"v": 1, "device_id": device.device_id, "readings": readings})


def single_payload(device: TestDevice, item: dict[str, object]) -> bytes:
    return orjson.dumps({"v": 1, "device_id": device.device_id, **item})


def spo2_series(
    start: datetime, values: list[float], first_seq: int = 1, pulse: float = 80.0
) -> list[dict[str, object]]:
    """SpO2 readings one second apart, each with the pulse an oximeter sends with it (SpO2
    without a plausible pulse is screened out as an artefact). Pulse seqs are SpO2's + 100000."""
    readings: list[dict[str, object]] = []
    for i, value in enumerate(values):
        at = start + timedelta(seconds=i)
        readings.append(reading(first_seq + i, "spo2", value, "%", at))
        readings.append(reading(100_000 + first_seq + i, "pulse_rate", pulse, "/min", at))
    return readings
